"""Write tests/data/grading/solutions.jsonl: labelled grading cases made from the human-written
solutions of MATH-500 and GSM8K (MIT): a solution with its own reference (true), with another
problem's different reference (false), and cut off before its final answer (false: no final answer).
Deterministic: `python scripts/build_grading_derived.py [DATA_DIR]`."""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "grading" / "solutions.jsonl"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _plain(ref: str) -> str:
    return re.sub(r"\\[a-z]+|[{}\s$]", "", ref)


def _cut(solution: str, rng: random.Random) -> str | None:
    """The solution cut at 50-85% of its length, where no answer marker survives."""
    n = len(solution)
    text = solution[: int(n * rng.uniform(0.5, 0.85))]
    if re.search(r"boxed|answer|####", text, re.IGNORECASE):
        return None
    return text


def build(data: Path) -> list[dict]:
    rng = random.Random(17)
    out: list[dict] = []
    sets = [("math500-solutions", "math500/test.jsonl", 120, 60, 30),
            ("gsm8k-solutions", "gsm8k/test.jsonl", 60, 40, 20)]
    for source, rel, n_true, n_false, n_cut in sets:
        rows = [r for r in _rows(data / rel) if r.get("solution")]
        rng.shuffle(rows)
        origin = f"shared/data/{rel} (solution field)"
        picks = rows[: n_true + n_false + 3 * n_cut]
        for r in picks[:n_true]:
            out.append(dict(source=source, origin=f"{origin} {r['id']}", output=r["solution"],
                            reference=r["answer"], label=True, category="solution", why=""))
        others = [r["answer"] for r in rows]
        for r in picks[n_true:n_true + n_false]:
            wrong = next(a for a in rng.sample(others, 20) if _plain(a) != _plain(r["answer"]))
            out.append(dict(source=source, origin=f"{origin} {r['id']}", output=r["solution"],
                            reference=wrong, label=False, category="other-reference",
                            why="reference of another problem"))
        made = 0
        for r in picks[n_true + n_false:]:
            text = _cut(r["solution"], rng)
            if text is None or made >= n_cut:
                continue
            made += 1
            out.append(dict(source=source, origin=f"{origin} {r['id']}", output=text,
                            reference=r["answer"], label=False, category="cut-off",
                            why="cut off before the final answer"))
    for i, row in enumerate(out, 1):
        row["id"] = f"sol-{i:04d}"
        row["licence"] = "MIT"
    return out


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
    rows = build(data)
    keys = ["id", "source", "origin", "licence", "output", "reference", "label", "category", "why"]
    OUT.write_text("".join(json.dumps({k: r[k] for k in keys}, ensure_ascii=False) + "\n" for r in rows),
                   encoding="utf-8")
    print(f"{len(rows)} cases -> {OUT}")


if __name__ == "__main__":
    main()
