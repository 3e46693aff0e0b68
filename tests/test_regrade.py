"""`tts regrade` on a real stored run (the packaged toy model through the quickstart recipe): the
run's own extractor changes nothing; another extractor changes answers, votes and grades, and the
regraded summary agrees with the regraded records; the originals are left untouched."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from tts.records import read_records
from tts.runner import run_recipe
from tts.verifiers.extract import canonical_number

TTS = str(Path(sys.executable).with_name("tts"))


@pytest.fixture(scope="module")
async def toy_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("regrade") / "toy"
    await run_recipe(ROOT / "recipes" / "quickstart.yaml", ["strategy.n=4", "sweep.n=[1,2,4]", "sweep.subsets=20"],
                     out, limit=12)
    return out


def regrade(run: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TTS, "regrade", str(run), *args], capture_output=True, text=True, timeout=300)


def test_same_extractor_changes_nothing(toy_run):
    before = (toy_run / "records.jsonl").read_bytes()
    proc = regrade(toy_run)
    assert proc.returncode == 0, proc.stderr
    assert "candidate answers changed: 0, candidate grades changed: 0" in proc.stdout
    assert "final answers changed: 0, final grades changed: 0" in proc.stdout
    assert (toy_run / "records.jsonl").read_bytes() == before
    summary = json.loads((toy_run / "summary.regraded.json").read_text())
    original = json.loads((toy_run / "summary.json").read_text())
    assert summary["accuracy"] == original["accuracy"]


def test_other_extractor_changes_answers_and_summary_agrees(toy_run):
    # the first number of the toy's chain ("18+36=54;...#24" -> 18) instead of the number after '#'
    proc = regrade(toy_run, "--extractor", "{name: regex, pattern: '^(-?\\d+)', numeric: true}")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((toy_run / "summary.regraded.json").read_text())
    changed = summary["regraded"]["changed"]
    assert changed["candidates"] == 12 * 4 and changed["candidate_answers"] > 0
    assert f"candidate answers changed: {changed['candidate_answers']}" in proc.stdout
    rows = [json.loads(line) for line in (toy_run / "records.regraded.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    for row in rows:  # every answer is what the new extractor reads in the stored text
        for c in row["candidates"]:
            m = re.match(r"(-?\d+)", c["text"])
            assert c["answer"] == (canonical_number(m.group(1)) if m else None)
            assert c["grade"] == (1.0 if c["answer"] == row["reference"] else 0.0)
    accuracy = sum(r["grade"] for r in rows) / len(rows)
    assert summary["accuracy"]["mean"] == pytest.approx(accuracy)
    assert summary["regraded"]["accuracy_after"] == pytest.approx(accuracy)
    assert len(read_records(toy_run)) == 12  # the original records are still there


def test_without_texts_only_the_grader_can_change(toy_run, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "recipe.lock.yaml").write_text((toy_run / "recipe.lock.yaml").read_text())
    rows = [json.loads(line) for line in (toy_run / "records.jsonl").read_text().splitlines()]
    for row in rows:
        for c in row["candidates"]:
            c.pop("text", None)
    (bare / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = regrade(bare, "--extractor", "last_number")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "keep no text" in proc.stderr
    proc = regrade(bare, "--grader", "math")
    assert proc.returncode == 0, proc.stderr
    assert "candidate answers changed: 0" in proc.stdout


def test_not_a_run_folder_is_one_line(tmp_path):
    proc = regrade(tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and proc.stderr.count("\n") == 1


def test_a_judge_grader_is_refused_in_one_line(toy_run):
    proc = regrade(toy_run, "--grader", "{name: math, judge: policy}")
    assert proc.returncode == 2 and "calls a model" in proc.stderr and proc.stderr.count("\n") == 1
