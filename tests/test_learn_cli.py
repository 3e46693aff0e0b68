"""`tts learn perk`: a short meta-training run saves a loadable PERK; `--resume` continues from the
checkpoint; under `accelerate launch` with two processes the hand all-reduce keeps both processes'
meta-parameters identical."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TTS = str(Path(sys.executable).with_name("tts"))
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))


def run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def test_short_run_saves_and_resumes(tmp_path):
    out = tmp_path / "perk"
    first = run([TTS, "learn", "perk", "--out", str(out), "--steps", "6", "--pretrain-steps", "10", "--save-every", "3",
                 "--eval-every", "3", "--eval-episodes", "2"])
    assert first.returncode == 0, first.stderr[-2000:]
    card = json.loads((out / "card.json").read_text())
    assert card["meta_steps"] == 6 and card["learn_eflops"] > 0 and card["pretrain_steps"] == 10
    assert card["best_step"] in (3, 6) and (out / "best.pt").exists()
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == list(range(1, 7)) and len(history[0]["inner_loss"]) == 4

    from tts.learn.train_perk import load

    perk = load(out)
    assert len(perk.names) > 0 and perk.config.inner_steps == 4
    again = run([TTS, "learn", "perk", "--out", str(out), "--steps", "9", "--pretrain-steps", "10",
                 "--save-every", "3", "--resume"])
    assert again.returncode == 0, again.stderr[-2000:]
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == list(range(1, 10))  # continued from step 6, not restarted
    bad = run([TTS, "learn", "perk", "--out", str(tmp_path / "x"), "--task", "nope"])
    assert bad.returncode != 0 and "unknown PERK task 'nope'" in bad.stderr


@pytest.mark.skipif(shutil.which("accelerate") is None and not Path(ACCELERATE).exists(), reason="accelerate CLI")
def test_two_processes_stay_in_sync(tmp_path):
    out = tmp_path / "perk2"
    proc = run([ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
                "no", "--dynamo_backend", "no", TTS, "learn", "perk", "--out", str(out), "--steps", "4",
                "--pretrain-steps", "5", "--save-every", "4"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "train.json").read_text())
    assert summary["processes"] == 2
    a, b = summary["param_checksums"]
    assert a == b
