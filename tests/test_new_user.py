"""What a new user trips over (issue 26), each as a user meets it: through the `tts` command."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

TTS = str(Path(sys.executable).with_name("tts"))


def tts(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([TTS, *args], capture_output=True, text=True, timeout=timeout)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    return lines[0]


@pytest.mark.parametrize("limit", ["0", "-2"])
def test_limit_must_be_positive(limit, tmp_path):
    line = one_error_line(tts("run", str(ROOT / "recipes" / "quickstart.yaml"), "--limit", limit,
                              "--out", str(tmp_path / "r")))
    assert "--limit must be a positive number" in line and not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", ["run", "check"])
def test_explicit_dataset_path_that_does_not_exist_is_named(command, tmp_path):
    args = [command, str(ROOT / "recipes" / "gsm8k-self-consistency.yaml"), "--set", "dataset.path=/nope/x.jsonl"]
    line = one_error_line(tts(*args, *(["--out", str(tmp_path / "r")] if command == "run" else [])))
    assert "dataset file not found: /nope/x.jsonl" in line


def test_missing_model_file_says_so(tmp_path):
    proc = tts("run", str(ROOT / "recipes" / "quickstart.yaml"), "--limit", "1", "--set",
               "roles.policy.model=/nope/model.gguf", "--out", str(tmp_path / "r"))
    assert proc.returncode != 0 and "model file not found: /nope/model.gguf" in proc.stderr, proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_rerunning_a_finished_run_loads_nothing(tmp_path):
    args = ["run", str(ROOT / "recipes" / "quickstart.yaml"), "--limit", "3", "--set", "strategy.n=2",
            "--set", "sweep.n=[1,2]", "--out", str(tmp_path / "r")]
    first = tts(*args)
    assert first.returncode == 0, first.stderr
    t0 = time.perf_counter()
    again = tts(*args)
    seconds = time.perf_counter() - t0
    assert again.returncode == 0, again.stderr
    assert "3 of 3 problems already recorded; nothing to run" in again.stderr
    assert "Loading weights" not in again.stderr  # the model was never loaded
    accuracy = [line for line in first.stdout.splitlines() if "accuracy" in line]
    assert accuracy and accuracy == [line for line in again.stdout.splitlines() if "accuracy" in line]
    print(f"rerun of a finished run: {seconds:.2f} s")


def test_summary_labels_latency_throughput_cost_profile_and_ties(tmp_path):
    proc = tts("run", str(ROOT / "recipes" / "quickstart.yaml"), "--limit", "4", "--set", "strategy.n=2",
               "--set", "sweep.n=[1,2]", "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())  # rich may wrap long lines
    assert "latency s / problem (mean; problems run concurrently)" in out
    assert "throughput problems / s (this invocation)" in out
    assert "eFLOPs / problem (kinetics, B200 hardware profile)" in out and "hardware: H100" in out
    assert "score a tie as the expected value" in out


def test_check_warns_about_cuda_on_a_machine_without_it():
    import torch

    proc = tts("check", str(ROOT / "recipes" / "math500-self-consistency.yaml"))
    assert proc.returncode == 0 and proc.stdout.strip().endswith(": ok")
    if not torch.cuda.is_available():
        assert "roles.policy.engine.device is cuda but no CUDA device is visible" in proc.stderr
    quiet = tts("check", str(ROOT / "recipes" / "quickstart.yaml"))
    assert "warning" not in quiet.stderr


def test_list_is_not_cut_at_80_columns_in_a_pipe():
    proc = tts("list")
    assert proc.returncode == 0 and "verifiers.math_extract:MathAnswer" in proc.stdout


def test_recipe_errors_share_one_format():
    recipe = str(ROOT / "recipes" / "quickstart.yaml")
    line = one_error_line(tts("check", recipe, "--set", "seeed=3"))
    assert line.startswith("error: seeed:") and "allowed: name, description, seed" in line and "(from --set seeed=3)" in line
    line = one_error_line(tts("check", recipe, "--set", "strategy.n=abc"))
    assert "strategy.n:" in line and "(from --set strategy.n=abc)" in line  # not blamed on the file
    line = one_error_line(tts("check", recipe, "--set", "strategy={serch: {name: beam_search}}"))
    assert "strategy.serch:" in line and "allowed: generator, aggregator, n, search" in line
