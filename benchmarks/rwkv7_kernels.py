"""RWKV-7's WKV back-ends on one device: the pure-PyTorch chunked form (ours) and, on a GPU with
flash-linear-attention installed, fla's Triton `chunk_rwkv7` — agreement (max abs difference of
outputs and final states, float32) and time, as a ratio against ours measured in the same run; the
token-loop reference is checked on a short prefix.

Usage: python benchmarks/rwkv7_kernels.py [--device cuda] [--length 4096] [--batch 4] [--heads 8] [--head-size 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import write  # noqa: E402


def main() -> None:
    import torch

    from tts.learn.rwkv7.wkv import KERNELS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--length", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--head-size", type=int, default=64)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    dev = torch.device(args.device)
    g = torch.Generator(device="cpu").manual_seed(0)
    b, t, h, n = args.batch, args.length, args.heads, args.head_size
    mk = lambda *s: torch.randn(*s, generator=g).to(dev)  # noqa: E731
    r, k, v = mk(b, t, h, n) / n ** 0.5, mk(b, t, h, n) / n ** 0.5, mk(b, t, h, n)
    logd = -0.6065 * torch.sigmoid(mk(b, t, h, n))
    kap = torch.nn.functional.normalize(mk(b, t, h, n), dim=-1)
    a = torch.sigmoid(mk(b, t, h, n))
    s0 = mk(b, h, n, n) * 0.1
    args_ = (r, logd, k, v, -kap, kap * a, s0)
    names = ["chunked"] + (["fla"] if dev.type == "cuda" else [])
    results: dict = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "shape": [b, t, h, n]}
    outs = {}
    for name in names:
        fn = KERNELS[name]
        try:
            fn(*args_)  # warm-up (Triton compiles here)
        except Exception as exc:  # fla missing or failing: say so, keep ours
            results[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
            continue
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(3):
            o, s = fn(*args_)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        outs[name] = (o.float(), s.float())
        results[name] = {"seconds": (time.perf_counter() - t0) / 3}
    short = tuple(x[:, :64] if x.dim() == 4 and x.shape[1] == t else x for x in args_)
    ref_o, ref_s = KERNELS["recurrent"](*short)
    ch_o, ch_s = KERNELS["chunked"](*short)
    results["chunked_vs_recurrent_64"] = {"out": float((ch_o - ref_o).abs().max()), "state": float((ch_s - ref_s).abs().max())}
    if "fla" in outs:
        o1, s1 = outs["chunked"]
        o2, s2 = outs["fla"]
        results["fla_vs_chunked"] = {"out": float((o1 - o2).abs().max()), "state": float((s1 - s2).abs().max()),
                                     "out_scale": float(o1.abs().max())}
        results["fla_speedup"] = results["chunked"]["seconds"] / results["fla"]["seconds"]
    print(json.dumps(results, indent=1))
    if args.out:
        write(args.out, results)


if __name__ == "__main__":
    main()
