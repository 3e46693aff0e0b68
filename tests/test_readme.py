"""The README's measuring commands, run as written (issue 26): each line of the block marked
`<!-- readme-commands -->` through bash, from a folder that holds the repository's recipes, with the
test environment's `tts` on PATH. Each command must succeed and print what the README says it does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- readme-commands -->\n```bash\n")[1].split("```")[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_measuring_commands_run_as_written(tmp_path):
    (tmp_path / "recipes").symlink_to(ROOT / "recipes")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    outputs = {}
    for line in readme_commands():
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", line], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"README command failed: {line}\n{proc.stderr[-2000:]}"
        command = line.split()[1]
        outputs[command] = outputs.get(command, "") + proc.stdout + proc.stderr
    assert set(outputs) == {"run", "show", "plan", "report", "arise"}
    assert "accuracy % by N" in outputs["show"]
    plan = " ".join(outputs["plan"].split())
    assert "majority@N" in plan and "recommended" in plan  # a configuration fits 2e9 eFLOPs/problem
    assert (tmp_path / "runs" / "report" / "report.html").exists() and "warning" not in outputs["report"]
    assert (tmp_path / "runs" / "qs-40" / "plan.png").exists()
    assert "ARISE" in outputs["arise"] and "at most 1" in " ".join(outputs["arise"].split())
