"""Every results file the README, docs and benchmarks/README.md name exists, parses, and — once written
through `benchmarks/provenance.py` — says which command, machine, package versions and date produced it.
Files from before that helper are listed in LEGACY; the list only shrinks (a test fails when a listed
file has gained its provenance, or when a new file lacks it)."""

from __future__ import annotations

import glob
import json
import re
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from provenance import REQUIRED  # noqa: E402

DOCS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NAMED = re.compile(r"benchmarks/results/[\w./*{},-]+\.json")
# written before benchmarks/provenance.py; each is to be rerun by its script (issue 19, part 3)
LEGACY = {
    "grader_accuracy_first_look.json",
    "lact_bf16_h100.json", "lact_bf16_muon_h100.json", "lact_fp32_h100.json",
    "lact_recall_cpu.json", "rwkv7_kernels_h100.json",
}


def expand(pattern: str) -> list[str]:
    """`a_{x,y}.json` and `a_*.json` as the docs write them, to the files they name."""
    braces = re.search(r"\{([^}]*)\}", pattern)
    if braces:
        return [p for alt in braces.group(1).split(",")
                for p in expand(pattern[: braces.start()] + alt + pattern[braces.end():])]
    return sorted(glob.glob(str(ROOT / pattern))) if "*" in pattern else [str(ROOT / pattern)]


def test_every_results_file_the_docs_name_exists_and_parses():
    named = {m for doc in DOCS for m in NAMED.findall(doc.read_text(encoding="utf-8"))}
    assert named, "the docs name no results file"
    missing = []
    for pattern in sorted(named):
        files = expand(pattern)
        if not files:
            missing.append(pattern)
        for f in files:
            try:
                json.loads(open(f, encoding="utf-8").read())
            except (OSError, ValueError) as exc:
                missing.append(f"{pattern} ({type(exc).__name__})")
    assert not missing, f"results files named in the docs but missing or unreadable: {missing}"


def test_results_files_say_how_they_were_made():
    lacking, gained = [], []
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        complete = isinstance(data, dict) and all(k in data for k in REQUIRED)
        if path.name in LEGACY:
            if complete:
                gained.append(path.name)
        elif not complete:
            lacking.append(path.name)
    assert not lacking, f"results files without {', '.join(REQUIRED)} (write them with benchmarks/provenance.py): {lacking}"
    assert not gained, f"these now carry their provenance: remove them from LEGACY: {gained}"
