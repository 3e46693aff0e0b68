"""How often does grading agree with the labels? Our pipeline (the `math` extractor, then the `math`
grader) against math-verify alone on the whole output, on the labelled cases of tests/data/grading/,
per source: accuracy, precision, recall and the slowest case's seconds. Both run in killable worker
pools with the same deadline; a case that times out counts as graded false.

    python benchmarks/grader_accuracy.py [--out benchmarks/results/grader_accuracy.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import write  # noqa: E402

from tts.verifiers.math_extract import MathAnswer  # noqa: E402
from tts.verifiers.math_grader import MathGrader  # noqa: E402
from tts.verifiers.pool import KillablePool  # noqa: E402

DATA = ROOT / "tests" / "data" / "grading"


def load_cases(folder: Path = DATA) -> list[dict]:
    """Every labelled case of every `*.jsonl` in the folder."""
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


async def ours(cases: list[dict], timeout: float) -> list[tuple[bool, float]]:
    """(graded correct, seconds) per case for extractor + grader, one case at a time."""
    extractor, grader = MathAnswer(), MathGrader(workers=2, timeout=timeout)
    await asyncio.to_thread(grader.pool.warm)
    out = []
    for case in cases:
        t0 = time.perf_counter()
        answer = extractor.extract(case["output"])
        ok = await grader.same(answer, case["reference"])
        out.append((ok, time.perf_counter() - t0))
    await grader.close()
    return out


async def math_verify_alone(cases: list[dict], timeout: float) -> list[tuple[bool, float]]:
    """(graded correct, seconds) per case for math-verify's parse of the whole output."""
    pool = KillablePool("tts.verifiers.math_equiv:math_verify_alone", workers=2, timeout=timeout)
    await asyncio.to_thread(pool.warm)
    out = []
    for case in cases:
        t0 = time.perf_counter()
        status, value = await pool.run(case["output"], case["reference"])
        out.append((status == "ok" and bool(value), time.perf_counter() - t0))
    pool.close()
    return out


def scores(labels: list[bool], graded: list[tuple[bool, float]]) -> dict:
    """Accuracy, precision, recall and worst seconds of one grader on one group of cases."""
    tp = sum(g and lab for lab, (g, _) in zip(labels, graded))
    fp = sum(g and not lab for lab, (g, _) in zip(labels, graded))
    fn = sum(lab and not g for lab, (g, _) in zip(labels, graded))
    right = sum(g == lab for lab, (g, _) in zip(labels, graded))
    return {"n": len(labels), "positives": sum(labels), "accuracy": right / len(labels),
            "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
            "false_positives": fp, "false_negatives": fn, "worst_s": max(s for _, s in graded)}


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def table(cases: list[dict], a: list, b: list) -> tuple[str, dict]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        groups[c["source"]].append(i)
    groups["all"] = list(range(len(cases)))
    lines = ["| source | cases (true) | ours: accuracy | precision | recall | FP / FN | slowest s "
             "| math-verify alone: accuracy | precision | recall | FP / FN | slowest s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    result = {}
    for name, idx in groups.items():
        labels = [cases[i]["label"] for i in idx]
        o, m = scores(labels, [a[i] for i in idx]), scores(labels, [b[i] for i in idx])
        result[name] = {"ours": o, "math_verify": m}
        cells = [f"{x['accuracy']:.1%} | {_ratio(x['precision'])} | {_ratio(x['recall'])} | "
                 f"{x['false_positives']} / {x['false_negatives']} | {x['worst_s']:.2f}" for x in (o, m)]
        lines.append(f"| {name} | {o['n']} ({o['positives']}) | {cells[0]} | {cells[1]} |")
    return "\n".join(lines), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "grader_accuracy.json"))
    parser.add_argument("--timeout", type=float, default=1.5, help="per-case deadline of each worker call (s)")
    parser.add_argument("--errors", action="store_true", help="print every case our pipeline gets wrong")
    args = parser.parse_args()
    cases = load_cases()
    t0 = time.perf_counter()
    a = asyncio.run(ours(cases, args.timeout))
    b = asyncio.run(math_verify_alone(cases, args.timeout))
    text, result = table(cases, a, b)
    print(text)
    extractor = MathAnswer()
    wrong = [c for c, (g, _) in zip(cases, a) if g != c["label"]]
    if args.errors:
        for c in wrong:
            print(f"{c['id']} label={c['label']} ref={c['reference'][:40]!r} "
                  f"got={extractor.extract(c['output'])!r:.60} tail={c['output'][-80:]!r}")
    write(args.out, {
        "grader_versions": {p: version(p) for p in ("math-verify", "latex2sympy2_extended", "sympy")},
        "wall_s": round(time.perf_counter() - t0, 1), "timeout_s": args.timeout, "table": result,
        "cases": [{"id": c["id"], "source": c["source"], "label": c["label"], "ours": ga, "ours_s": round(sa, 4),
                   "math_verify": gb, "math_verify_s": round(sb, 4)}
                  for c, (ga, sa), (gb, sb) in zip(cases, a, b)],
    })
    print(f"wrote {args.out} ({len(wrong)} of {len(cases)} cases wrong for our pipeline)")


if __name__ == "__main__":
    main()
