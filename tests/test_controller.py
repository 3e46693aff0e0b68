"""The controller on real tiny models: durable records survive SIGKILL and resume exactly once,
budgets reserve and refund, a crashing problem is recorded, seeds make N=4 a prefix of N=8."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import tiny_recipe
from tts.budget import Budget, BudgetExhausted
from tts.build import build_pieces
from tts.components import RecipeError
from tts.context import StrategyContext
from tts.recipe import parse_recipe
from tts.records import read_records
from tts.runner import run_pieces

TTS = str(Path(sys.executable).with_name("tts"))


async def run(recipe: dict, out: Path, limit=None):
    pieces = build_pieces(parse_recipe(recipe))
    return await run_pieces(pieces, out, limit=limit, progress=False)


def test_budget_reserve_refund_and_exhaustion():
    run_budget = Budget("tokens", 100)
    b = Budget("tokens", 60, parent=run_budget)
    r = b.reserve(50)
    assert b.remaining == 10 and run_budget.remaining == 50
    b.settle(r, 20)  # used less than reserved: the rest comes back
    assert b.used == 20 and b.remaining == 40 and run_budget.remaining == 80
    with pytest.raises(BudgetExhausted):
        b.reserve(41)
    other = Budget("tokens", 1000, parent=run_budget)
    with pytest.raises(BudgetExhausted):  # the run cap binds before the problem's own
        other.reserve(81)


def test_context_never_holds_the_grader():
    params = StrategyContext.__init__.__code__.co_varnames
    assert not any("grade" in p for p in params)


async def test_run_records_every_problem_with_candidates(tiny_model_dir, problems_file, tmp_path):
    summary = await run(tiny_recipe(tiny_model_dir, problems_file, tmp_path), tmp_path / "r")
    records = read_records(tmp_path / "r")
    assert len(records) == 24 and summary["ok"] == 24
    rec = records[0]
    assert len(rec["candidates"]) == 4
    cand = rec["candidates"][0]
    for key in ("index", "seed", "answer", "scores", "logprob_stats", "grade", "completion_tokens", "role"):
        assert key in cand
    assert set(cand["scores"]) == {"confidence", "vote"}
    assert rec["cost"]["policy"]["completion_tokens"] == sum(c["completion_tokens"] for c in rec["candidates"])
    lock = yaml.safe_load((tmp_path / "r" / "recipe.lock.yaml").read_text())
    assert lock["chat_templates"]["policy"] and lock["packages"]["transformers"]
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["problems"] == 24


async def test_token_budget_caps_samples_and_is_respected(tiny_model_dir, problems_file, tmp_path):
    recipe = tiny_recipe(tiny_model_dir, problems_file, tmp_path, budget={"unit": "tokens", "per_problem": 50})
    recipe["strategy"]["generator"]["round_size"] = 1
    await run(recipe, tmp_path / "b", limit=4)
    for rec in read_records(tmp_path / "b"):
        spent = rec["cost"]["policy"]["prompt_tokens"] + rec["cost"]["policy"]["completion_tokens"]
        assert spent <= 50
        assert 1 <= len(rec["candidates"]) < 4  # reservation (prompt + 12 tokens) stops early


async def test_exhausted_budget_aggregates_what_exists(tiny_model_dir, problems_file, tmp_path):
    recipe = tiny_recipe(tiny_model_dir, problems_file, tmp_path, budget={"unit": "tokens", "per_problem": 5})
    await run(recipe, tmp_path / "z", limit=2)
    for rec in read_records(tmp_path / "z"):
        assert rec["status"] == "ok" and rec["candidates"] == [] and rec["answer"] is None
        assert "budget_exhausted" in rec["info"]


async def test_crash_in_one_problem_is_recorded_and_run_continues(tiny_model_dir, problems_file, tmp_path):
    recipe = tiny_recipe(tiny_model_dir, problems_file, tmp_path)
    recipe["strategy"]["generator"] = {"name": "plugins:CrashOn", "problem_id": "p03"}
    summary = await run(recipe, tmp_path / "c", limit=6)
    records = {r["id"]: r for r in read_records(tmp_path / "c")}
    assert len(records) == 6 and summary["failed"] == 1
    assert records["p03"]["status"] == "error" and "planted failure" in records["p03"]["error"]
    assert all(r["status"] == "ok" for pid, r in records.items() if pid != "p03")


async def test_a_budget_stop_aggregates_what_was_paid_for(tiny_model_dir, problems_file, tmp_path):
    """Round 1 (2 samples) fits the per-problem budget, round 2 does not: the answer is chosen from
    round 1's candidates instead of from none."""
    recipe = tiny_recipe(tiny_model_dir, problems_file, tmp_path, budget={"unit": "samples", "per_problem": 3})
    recipe["strategy"]["generator"] = {"name": "plugins:Rounds", "per_round": 2}
    recipe["strategy"]["n"] = 6
    await run(recipe, tmp_path / "b", limit=2)
    for rec in read_records(tmp_path / "b"):
        assert rec["status"] == "ok" and "budget_exhausted" in rec["info"]
        assert [c["index"] for c in rec["candidates"]] == [0, 1]
        assert rec["answer"] in [c["answer"] for c in rec["candidates"]]  # chosen among them (a random
        # tiny model often writes no extractable answer, so it may be None)
        assert all(c["eflops"] > 0 for c in rec["candidates"])


@pytest.mark.parametrize("value", ["object", "nan"])
async def test_a_record_that_cannot_be_written_fails_that_problem_only(value, tiny_model_dir, problems_file, tmp_path):
    recipe = tiny_recipe(tiny_model_dir, problems_file, tmp_path)
    recipe["strategy"]["generator"] = {"name": "plugins:UnwritableOn", "problem_id": "p02", "value": value}
    summary = await run(recipe, tmp_path / "u", limit=4)
    records = {r["id"]: r for r in read_records(tmp_path / "u")}
    assert len(records) == 4 and summary["failed"] == 1 and summary["ok"] == 3
    bad = records["p02"]
    assert bad["status"] == "error" and "record not serialisable at candidates[0].meta.probe" in bad["error"]
    assert bad["cost"]["policy"]["completion_tokens"] > 0  # what was paid for is kept


async def test_topping_up_n_reproduces_first_samples(tiny_model_dir, problems_file, tmp_path):
    small = tiny_recipe(tiny_model_dir, problems_file, tmp_path)
    big = tiny_recipe(tiny_model_dir, problems_file, tmp_path)
    big["strategy"]["n"] = 8
    big["strategy"]["generator"]["round_size"] = 3  # rounds must not change seeds either
    big["concurrency"] = 2  # nor must scheduling
    await run(small, tmp_path / "n4", limit=5)
    await run(big, tmp_path / "n8", limit=5)
    a = {r["id"]: r for r in read_records(tmp_path / "n4")}
    b = {r["id"]: r for r in read_records(tmp_path / "n8")}
    for pid in a:
        first4 = [(c["seed"], c["text"]) for c in b[pid]["candidates"][:4]]
        assert first4 == [(c["seed"], c["text"]) for c in a[pid]["candidates"]]


async def test_resume_refuses_a_different_recipe(tiny_model_dir, problems_file, tmp_path):
    recipe = tiny_recipe(tiny_model_dir, problems_file, tmp_path)
    await run(recipe, tmp_path / "d", limit=2)
    recipe["seed"] = 99
    with pytest.raises(RecipeError, match="seed"):
        await run(recipe, tmp_path / "d", limit=2)


def start_long_run(model: Path, tmp_path: Path, env: dict, count: int, max_tokens: int):
    """Start `tts run` on `count` problems in a subprocess; return (process, command, records path)
    once at least a few records exist."""
    data = tmp_path / "many.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i:03d}", "problem": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n"
                            for i in range(count)))
    recipe = tiny_recipe(model, data, tmp_path)
    recipe["concurrency"] = 2
    recipe["roles"]["policy"]["sampling"]["max_tokens"] = max_tokens
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    cmd = [TTS, "run", str(path), "--out", str(tmp_path / "run"), "--no-progress"]
    records = tmp_path / "run" / "records.jsonl"
    # a terminal's Ctrl-C reaches a foreground process with SIGINT at its default; a test runner started
    # in the background (`cmd &`) would hand SIG_IGN down, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and (not records.exists() or records.read_text().count("\n") < 3):
        time.sleep(0.05)
    return proc, cmd, records


def finish_and_check(cmd: list[str], records: Path, env: dict, count: int) -> None:
    """Rerun the same command; every problem must end up recorded exactly once."""
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ids = [json.loads(line)["id"] for line in records.read_text().splitlines()]
    assert sorted(ids) == [f"q{i:03d}" for i in range(count)]


def test_sigkill_then_rerun_records_each_problem_once(tiny_model_dir, tmp_path, venv_env):
    proc, cmd, records = start_long_run(tiny_model_dir, tmp_path, venv_env, 60, 48)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= records.read_text().count("\n") < 60, "the kill should land mid-run"
    finish_and_check(cmd, records, venv_env, 60)


def test_ctrl_c_stops_cleanly_and_the_run_resumes(tiny_model_dir, tmp_path, venv_env):
    proc, cmd, records = start_long_run(tiny_model_dir, tmp_path, venv_env, 80, 64)
    proc.send_signal(signal.SIGINT)
    t0 = time.time()
    _, err = proc.communicate(timeout=60)
    assert time.time() - t0 < 15, "Ctrl-C should stop the run within seconds"
    assert proc.returncode == 130 and "resume" in err
    assert 3 <= records.read_text().count("\n") < 80
    finish_and_check(cmd, records, venv_env, 80)


async def test_sample_and_flop_budgets(tiny_model_dir, problems_file, tmp_path):
    recipe = tiny_recipe(tiny_model_dir, problems_file, tmp_path, budget={"unit": "samples", "per_problem": 3})
    recipe["strategy"]["generator"]["round_size"] = 2
    await run(recipe, tmp_path / "s", limit=3)
    assert all(len(r["candidates"]) == 3 for r in read_records(tmp_path / "s"))
    recipe = tiny_recipe(tiny_model_dir, problems_file, tmp_path, budget={"unit": "eflops", "per_problem": 1.2e7},
                         cost="dense_2pt")
    recipe["strategy"]["generator"]["round_size"] = 1
    await run(recipe, tmp_path / "f", limit=3)
    for r in read_records(tmp_path / "f"):
        assert r["cost"]["policy"]["eflops"] <= 1.2e7 and 1 <= len(r["candidates"]) < 4
