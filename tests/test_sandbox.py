"""The sandbox: the adversarial suite (every hostile program contained, nothing left running),
the refusal line when strict isolation is impossible, the weak mode's limits, parallel runs."""

from __future__ import annotations

import asyncio
import time

import pytest

from tts.verifiers.sandbox import Limits, Sandbox, SandboxUnavailable, sandbox_from
from tts.verifiers.sandbox_suite import run_suite, sandbox_processes


def test_adversarial_suite_is_contained():
    sandbox = Sandbox(limits=Limits(wall_seconds=8, cpu_seconds=5, processes=32))
    rows = asyncio.run(run_suite(sandbox))
    assert len(rows) == 12
    escaped = [r for r in rows if not r["contained"]]
    assert not escaped, escaped
    assert not sandbox_processes(sandbox)


def test_strict_refuses_in_one_line_without_root(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(SandboxUnavailable, match="isolation: weak") as err:
        asyncio.run(Sandbox().run_python("print(1)"))
    assert "\n" not in str(err.value)


def test_weak_mode_keeps_the_limits():
    sandbox = Sandbox(isolation="weak", limits=Limits(wall_seconds=3, cpu_seconds=2, memory_mb=512))
    r = asyncio.run(sandbox.run_python("x = bytearray(2 * 1024 ** 3)"))
    assert not r.ok and "MemoryError" in r.stderr
    r = asyncio.run(sandbox.run_python("import os; print(sorted(os.environ))"))
    assert r.ok and "TTS" not in r.stdout and "HOME" in r.stdout


def test_parallel_runs_in_order_and_bounded_by_workers():
    sandbox = Sandbox(workers=2)
    t0 = time.perf_counter()
    jobs = [{"argv": ["python", "-c", f"import time; time.sleep(0.3); print({i})"]} for i in range(6)]
    results = asyncio.run(sandbox.map(jobs))
    assert [r.stdout.strip() for r in results] == [str(i) for i in range(6)]
    assert time.perf_counter() - t0 >= 0.85  # three waves of two


def test_files_and_recipe_mapping_are_checked():
    with pytest.raises(ValueError, match="outside the run directory"):
        asyncio.run(Sandbox().run(["python", "-c", "1"], {"../evil.py": "x"}))
    with pytest.raises(ValueError, match="sandbox.limits: unknown field 'cpu'"):
        sandbox_from({"limits": {"cpu": 3}})
    assert sandbox_from({"isolation": "weak", "limits": {"cpu_seconds": 3}}).limits.cpu_seconds == 3
