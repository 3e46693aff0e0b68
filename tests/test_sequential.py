"""Budget forcing and self-refinement on a tiny real model."""

from __future__ import annotations

import pytest

from test_search import run


def recipe_with(tiny_model_dir, problems_file, tmp_path, search: dict, **extra) -> dict:
    from conftest import tiny_recipe

    recipe = tiny_recipe(tiny_model_dir, problems_file, tmp_path)
    recipe["strategy"] = {"search": search}
    recipe.update(extra)
    return recipe


@pytest.mark.parametrize("min_thinking,k", [(40, 3), (0, 3), (40, 0)])
async def test_budget_forcing_continues_k_times_and_never_exceeds_the_maximum(tmp_path, min_thinking, k):
    """The toy model writes `18+36=54;...`: with think_end '=' every step ends thinking early, so
    with the minimum at the maximum each early end gets a continuation until the K allowed are used."""
    recipe = {"name": "bf", "seed": 0, "dataset": {"name": "toy_arith", "count": 4},
              "roles": {"policy": {"model": "toy:default", "sampling": {"temperature": 1.0}}},
              "prompt": {"template": "{problem};", "chat": False},
              "strategy": {"search": {"name": "budget_forcing", "think_end": "=", "min_thinking": min_thinking,
                                      "max_thinking": 40, "continuation": "0", "max_continuations": k,
                                      "answer_tokens": 8, "chains": 2}},
              "extractor": {"name": "regex", "pattern": "#(-?\\d+)", "numeric": True}, "grader": "exact",
              "output": {"dir": str(tmp_path)}}
    records = await run(recipe, tmp_path / "bf", limit=4)
    for r in records:
        assert r["status"] == "ok", r.get("error")
        for c in r["candidates"]:
            m = c["meta"]
            assert m["thinking_tokens"] <= 40 and m["continuations"] <= k
            if m["ended_by"] == "end" and min_thinking == 40:
                assert m["continuations"] == k  # ended early only after all K continuations
            if min_thinking == 0:
                assert m["continuations"] == 0 and m["ended_by"] == "end"
        assert r["cost"]["policy"]["completion_tokens"] == sum(c["completion_tokens"] for c in r["candidates"])
        # each chain's eFLOPs are its own calls' ledger entries: together, the problem's whole cost
        assert sum(c["eflops"] for c in r["candidates"]) == pytest.approx(r["cost"]["policy"]["eflops"], rel=1e-9)
    want = k if min_thinking == 40 else 0
    assert all(c["meta"]["continuations"] == want for r in records for c in r["candidates"])


async def test_self_refine_rounds_roles_and_selector_stop(tiny_model_dir, problems_file, tmp_path):
    search = {"name": "self_refine", "critic": "critic", "rounds": 2, "chains": 2, "feedback_tokens": 6}
    recipe = recipe_with(tiny_model_dir, problems_file, tmp_path, search)
    recipe["roles"]["critic"] = {"model": str(tiny_model_dir), "sampling": {"max_tokens": 6}}
    records = await run(recipe, tmp_path / "sr", limit=3)
    for r in records:
        assert r["status"] == "ok", r.get("error")
        assert all(c["meta"]["rounds"] == 2 for c in r["candidates"])  # random text never says "no errors"
        assert r["cost"]["critic"]["calls"] == 2 * 2 and r["cost"]["policy"]["calls"] == 2 * 3
    # a selector that is always satisfied stops every chain right after its draft
    search = {**search, "selector": "vote", "threshold": 0.0}
    recipe = recipe_with(tiny_model_dir, problems_file, tmp_path, search, selectors=["vote"])
    recipe["roles"]["critic"] = {"model": str(tiny_model_dir)}
    records = await run(recipe, tmp_path / "sr2", limit=2)
    assert all(c["meta"]["rounds"] == 0 for r in records for c in r["candidates"])
    assert all("critic" not in r["cost"] for r in records)


async def test_budget_forcing_native_fast_path_on_vllm(tmp_path):
    """vLLM with a reasoning parser ends thinking at the budget itself: one request per chain."""
    pytest.importorskip("vllm")
    from tinymodel import build_tiny_llama
    from tts.backends.vllm import VLLMBackend
    from tts.budget import Budget
    from tts.context import StrategyContext
    from tts.ledger import Ledger
    from tts.prompts import PromptSpec
    from tts.roles import Role
    from tts.strategies.budget_forcing import BudgetForcing
    from tts.types import Problem, Sampling

    model = build_tiny_llama(tmp_path / "m", hidden=128, extra_specials=("<think>", "</think>"))
    backend = VLLMBackend(str(model), dtype="float32", max_model_len=256,
                          engine_args={"reasoning_parser": "deepseek_r1",
                                       "reasoning_config": {"reasoning_start_str": "<think>",
                                                            "reasoning_end_str": "</think>"}})
    await backend.start()
    try:
        role = Role("policy", backend, Sampling(temperature=1.0), False, PromptSpec(template="Q: {problem}"))
        ledger = Ledger()
        ctx = StrategyContext(Problem("q", "What is 12 + 7?"), {"policy": role}, ledger, Budget("tokens"))
        bf = BudgetForcing(think_start="<think>", think_end="</think>", max_thinking=6, answer_tokens=5,
                           chains=3, native=True)
        out = await bf.solve(ctx.problem, ctx)
        end = backend.tokenizer.convert_tokens_to_ids("</think>")
        for c in out.candidates:
            assert c.meta["ended_by"] == "native" and c.meta["thinking_tokens"] <= 6
            assert c.token_ids[c.meta["thinking_tokens"]] == end and "</think>" in c.text
        assert len(ledger.entries) == 3  # one request per chain
    finally:
        await backend.close()
