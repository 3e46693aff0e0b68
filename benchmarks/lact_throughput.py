"""LaCT's chunked fast-weight update: tokens/s at chunk C ∈ {16, 64, 256, 2048} against the same
vectorised update at C = 16 (the small-minibatch TTT regime), measured in the same run, as ratios.
Each configuration runs `lact_update_apply` (apply + update per chunk: SwiGLU fast weights, momentum,
weight norm; `--muon` adds Newton–Schulz) on the same random inputs, forward only.

Usage: python benchmarks/lact_throughput.py [--device cpu|cuda] [--length 8192] [--batch 2] [--heads 4] [--dim 128]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import write  # noqa: E402


def main() -> None:
    import torch

    from tts.learn.lact.ops import UpdateRule, lact_update_apply

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--length", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--muon", action="store_true")
    ap.add_argument("--chunks", type=int, nargs="+", default=[16, 64, 256, 2048])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    dev, dt = torch.device(args.device), getattr(torch, args.dtype)
    g = torch.Generator(device="cpu").manual_seed(0)
    bh, n, d = args.batch * args.heads, args.length, args.dim
    mk = lambda *s: torch.randn(*s, generator=g).to(dev, dt)  # noqa: E731
    w = (mk(bh, d, d) / d ** 0.5, mk(bh, d, d) / d ** 0.5, mk(bh, d, d) / d ** 0.5)
    q, k, v = (torch.nn.functional.normalize(mk(bh, n, d), dim=-1) for _ in range(3))
    lrs = tuple(torch.full((bh, n, 1), 1e-2, device=dev, dtype=dt) for _ in range(3))
    beta = torch.full((bh, n, 1), 0.9, device=dev, dtype=dt)
    rule = UpdateRule(use_momentum=True, use_muon=args.muon, weight_norm=True)

    def run(c: int) -> float:
        def once() -> None:
            with torch.no_grad():
                lact_update_apply(w, q, k, v, *lrs, momentum=beta, chunk_size=c, rule=rule)
            if dev.type == "cuda":
                torch.cuda.synchronize()

        once()  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            once()
            best = min(best, time.perf_counter() - t0)
        return args.batch * n / best

    rates = {c: run(c) for c in args.chunks}
    base = rates[args.chunks[0]]
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"device {name}, {args.dtype}, batch {args.batch} × {args.heads} heads × d {d}, length {n}, "
          f"muon {args.muon}\n| chunk | tokens/s | × chunk {args.chunks[0]} |\n| --- | --- | --- |")
    for c, r in rates.items():
        print(f"| {c} | {r:,.0f} | {r / base:.2f} |")
    if args.out:
        write(args.out, {"device": name, "args": vars(args), "tokens_per_s": rates,
                         "ratio": {c: r / base for c, r in rates.items()}})


if __name__ == "__main__":
    main()
