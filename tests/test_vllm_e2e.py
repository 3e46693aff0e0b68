"""The quickstart on the vllm backend through the real CLI, leaving no engine process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

TTS = str(Path(sys.executable).with_name("tts"))


def vllm_processes() -> set[int]:
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                name = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"VLLM::" in name:
                found.add(int(pid))
    return found


def test_quickstart_on_vllm_leaves_no_orphans(tmp_path):
    pytest.importorskip("vllm")
    before = vllm_processes()
    out = tmp_path / "qs-vllm"
    proc = subprocess.run([TTS, "run", str(ROOT / "recipes" / "quickstart.yaml"), "--set", "roles.policy.backend=vllm",
                           "--limit", "60", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == 60 and summary["failed"] == 0
    assert summary["sweep"]["rows"][-1]["majority"]["mean"] > summary["sweep"]["rows"][0]["majority"]["mean"]
    assert summary["cost_by_role"]["policy"]["completion_tokens"] > 0
    assert vllm_processes() - before == set(), "engine processes outlived the run"
