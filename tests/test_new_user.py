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
    assert "loaded on" not in again.stderr  # the model was never loaded (no load phase line)
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
    assert proc.returncode == 0 and "tts.verifiers.math_extract:MathAnswer" in proc.stdout


def test_recipe_errors_share_one_format():
    recipe = str(ROOT / "recipes" / "quickstart.yaml")
    line = one_error_line(tts("check", recipe, "--set", "seeed=3"))
    assert line.startswith("error: seeed:") and "allowed: name, description, seed" in line and "(from --set seeed=3)" in line
    line = one_error_line(tts("check", recipe, "--set", "strategy.n=abc"))
    assert "strategy.n:" in line and "(from --set strategy.n=abc)" in line  # not blamed on the file
    line = one_error_line(tts("check", recipe, "--set", "strategy={serch: {name: beam_search}}"))
    assert "strategy.serch:" in line and "allowed: generator, aggregator, n, search" in line


def test_a_log_file_gets_a_line_per_phase_not_bars(tmp_path):
    """stderr to a file: no tqdm bar of transformers' weight loading, one line when the model is
    loaded, and run progress as a line per tenth of the problems."""
    log_file = tmp_path / "run.log"
    with open(log_file, "w") as err:
        proc = subprocess.run([TTS, "run", str(ROOT / "recipes" / "quickstart.yaml"), "--limit", "20", "--set",
                               "strategy.n=2", "--set", "sweep.n=[1,2]", "--out", str(tmp_path / "r")],
                              stdout=subprocess.PIPE, stderr=err, text=True, timeout=300)
    assert proc.returncode == 0
    text = log_file.read_text()
    assert "\r" not in text and "Loading weights" not in text and "it/s" not in text, text
    assert "hf backend:" in text and "loaded on cpu in" in text
    lines = [ln for ln in text.splitlines() if "tts run: " in ln]
    assert len(lines) == 10 and "tts run: 20/20" in lines[-1]


def test_help_shows_flags_without_a_type():
    proc = tts("arise", "--help")
    assert proc.returncode == 0 and "--json" in proc.stdout and "<bool>" not in proc.stdout
    listing = tts("--help").stdout
    assert "..." not in listing.split("Commands:")[1]  # every command's one-line help fits


def test_show_prints_the_stored_summary_only_while_it_matches_the_records(tmp_path):
    import json

    recipe = str(ROOT / "recipes" / "quickstart.yaml")
    args = ["--set", "strategy.n=2", "--set", "sweep.n=[1,2]", "--out", str(tmp_path / "r")]
    first = tts("run", recipe, "--limit", "6", *args)
    assert first.returncode == 0, first.stderr
    stored = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert len(stored["records_sha256"]) == 64  # written from every record in the folder
    shown = tts("show", str(tmp_path / "r")).stdout
    assert [ln for ln in shown.splitlines() if "accuracy" in ln or "│  2 │" in ln] == \
        [ln for ln in first.stdout.splitlines() if "accuracy" in ln or "│  2 │" in ln]
    subset = tts("run", recipe, "--limit", "3", *args)  # a summary of 3 of the 6 recorded problems
    assert subset.returncode == 0 and "3 (3 ok" in subset.stdout
    assert "records_sha256" not in json.loads((tmp_path / "r" / "summary.json").read_text())
    assert "6 (6 ok" in tts("show", str(tmp_path / "r")).stdout  # recomputed from all six records


def test_summary_does_not_depend_on_the_order_problems_finished_in(tmp_path):
    import yaml

    from tts.evals.summary import summarize_run_dir
    from tts.recipe import parse_recipe
    from tts.records import read_records

    proc = tts("run", str(ROOT / "recipes" / "quickstart.yaml"), "--limit", "12", "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    lock = tmp_path / "r" / "recipe.lock.yaml"
    recipe = parse_recipe(yaml.safe_load(lock.read_text())["recipe"], str(lock))
    records = read_records(tmp_path / "r")
    forward = summarize_run_dir(tmp_path / "r", recipe, records)
    backward = summarize_run_dir(tmp_path / "r", recipe, records[::-1])
    assert forward["sweep"] == backward["sweep"] and forward["accuracy"] == backward["accuracy"]


def test_a_misspelled_component_name_lists_the_known_ones():
    line = one_error_line(tts("check", str(ROOT / "recipes" / "math500-beam-search.yaml"),
                              "--set", "strategy.search.name=beam_serch"))
    assert "strategy.search.name: unknown search 'beam_serch' (known: beam_search," in line


def test_resume_checks_the_environment_and_keeps_the_lock(tmp_path):
    """The lock is written once; a resume under another package version or chat template is refused
    with one line naming it, and --force accepts it (recorded in the lock). The older environment
    is simulated by editing the lock the first run wrote."""
    import yaml

    recipe = str(ROOT / "recipes" / "quickstart.yaml")
    args = ["--set", "strategy.n=2", "--set", "sweep.n=[1,2]", "--out", str(tmp_path / "r")]
    assert tts("run", recipe, "--limit", "2", *args).returncode == 0
    lock = tmp_path / "r" / "recipe.lock.yaml"
    first = lock.read_text()
    assert tts("run", recipe, "--limit", "3", *args).returncode == 0
    assert lock.read_text() == first  # a resume does not rewrite it
    data = yaml.safe_load(first)
    data["packages"]["torch"] = "1.0.0"
    data["chat_templates"]["policy"] = "0123abcd"
    lock.write_text(yaml.safe_dump(data, sort_keys=False))
    line = one_error_line(tts("run", recipe, "--limit", "4", *args))  # before any model loads
    assert "another environment" in line and "torch 1.0.0 -> " in line and "--force" in line
    assert "accepted_on_resume" not in yaml.safe_load(lock.read_text())
    data["packages"]["torch"] = yaml.safe_load(first)["packages"]["torch"]
    lock.write_text(yaml.safe_dump(data, sort_keys=False))
    template = tts("run", recipe, "--limit", "4", *args)  # found once the role has loaded
    assert template.returncode == 2 and "chat template of role 'policy'" in template.stderr.splitlines()[-1]
    data["packages"]["torch"] = "1.0.0"
    lock.write_text(yaml.safe_dump(data, sort_keys=False))
    forced = tts("run", recipe, "--limit", "4", "--force", *args)
    assert forced.returncode == 0 and "resuming with --force although torch 1.0.0" in forced.stderr
    assert "although chat template of role 'policy' changed" in forced.stderr
    after = yaml.safe_load(lock.read_text())
    assert after["created"] == data["created"] and len(after["accepted_on_resume"]) == 2
    assert "4 (4 ok" in forced.stdout
