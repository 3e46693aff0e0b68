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


def test_toy_atts_on_two_vllm_engines(tmp_path):
    """ATTS from its recipe with draft and target each on its own vLLM engine (the CLI path)."""
    pytest.importorskip("vllm")
    before = vllm_processes()
    out = tmp_path / "atts-vllm"
    proc = subprocess.run([TTS, "run", str(ROOT / "recipes" / "toy-atts.yaml"), "--set", "roles.draft.backend=vllm",
                           "--set", "roles.target.backend=vllm", "--set", "strategy.n=4", "--limit", "6",
                           "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] == 6 and set(summary["cost_by_role"]) == {"draft", "target"}
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    steps = [s for r in records for c in r["candidates"] for s in c["meta"]["steps"] if s["author"] == "draft"]
    assert steps and all(0 < s["p"] <= 1 and s["rejected"] == (s["p"] > 0.6 + 1e-9) for s in steps)
    assert summary["cost_by_role"]["target"]["calls"] >= len(steps)  # every draft step was scored
    assert vllm_processes() - before == set(), "engine processes outlived the run"
