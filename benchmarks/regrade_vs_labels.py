"""Stored runs graded by the old pipeline and re-graded by `tts regrade`, both against independent
labels of the same samples: how many candidate grades agree, before and after, with FP / FN.

    tts regrade benchmarks/results/regrade/smollm2_math500 --extractor math   # (and smollm2_gsm8k)
    python benchmarks/regrade_vs_labels.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = {"smollm2_math500": "smollm2_math500.jsonl", "smollm2_gsm8k": "smollm2_gsm8k.jsonl"}


def agreement(records: Path, labels: dict[tuple[str, str], bool]) -> dict:
    """Agreement of every candidate's stored grade with its label."""
    tp = fp = fn = right = n = 0
    for line in records.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for c in record["candidates"]:
            label, graded = labels[(c["text"], record["reference"])], (c["grade"] or 0) > 0
            n += 1
            right += graded == label
            tp, fp, fn = tp + (graded and label), fp + (graded and not label), fn + (label and not graded)
    return {"candidates": n, "agree": right, "agreement": right / n, "tp": tp, "fp": fp, "fn": fn}


def main() -> None:
    out = {"command": "python " + " ".join(sys.argv), "runs": {}}
    for run, label_file in RUNS.items():
        rows = [json.loads(line) for line in (ROOT / "tests" / "data" / "grading" / label_file).open()]
        labels = {(r["output"], r["reference"]): r["label"] for r in rows}
        folder = ROOT / "benchmarks" / "results" / "regrade" / run
        regraded = json.loads((folder / "summary.regraded.json").read_text())["regraded"]
        result = {"before": agreement(folder / "records.jsonl", labels),
                  "after": agreement(folder / "records.regraded.jsonl", labels),
                  "regrade": {k: regraded[k] for k in ("extractor", "grader", "changed", "at", "versions")}}
        out["runs"][run] = result
        b, a = result["before"], result["after"]
        print(f"{run}: {b['candidates']} candidates; agree with labels {b['agree']} -> {a['agree']} "
              f"(FP {b['fp']} -> {a['fp']}, FN {b['fn']} -> {a['fn']}); "
              f"answers changed {regraded['changed']['candidate_answers']}, grades changed "
              f"{regraded['changed']['candidate_grades']}")
    path = ROOT / "benchmarks" / "results" / "regrade" / "agreement.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
