"""PRM beam search and DVTS on a tiny real model with a generative PRM on the same model."""

from __future__ import annotations

import pytest


def search_recipe(tiny_model_dir, problems_file, tmp_path, search: dict) -> dict:
    from conftest import tiny_recipe

    recipe = tiny_recipe(tiny_model_dir, problems_file, tmp_path)
    recipe["roles"]["prm"] = {"model": str(tiny_model_dir)}
    recipe["strategy"] = {"search": search}
    recipe["selectors"] = [{"name": "prm", "role": "prm", "separator": " ", "step_tag": "", "good": "+"}]
    return recipe


async def run(recipe, out, limit=3):
    from tts.build import build_pieces
    from tts.controller import Controller
    from tts.recipe import parse_recipe
    from tts.records import read_records

    await Controller(build_pieces(parse_recipe(recipe)), out, limit=limit, progress=False).run()
    return read_records(out)


async def test_beam_search_keeps_exactly_the_requested_beams(tiny_model_dir, problems_file, tmp_path):
    recipe = search_recipe(tiny_model_dir, problems_file, tmp_path,
                           {"name": "beam_search", "beam_width": 2, "expansions": 3, "max_depth": 3,
                            "separator": " ", "step_tokens": 4})
    records = await run(recipe, tmp_path / "beam")
    for r in records:
        assert r["status"] == "ok", r.get("error")
        info = r["info"]
        assert info["depths"] >= 1 and all(k <= 2 for k in info["live"])
        assert info["expansions"] <= 6 + 2 * 3 * (info["depths"] - 1)
        scores = [c["scores"]["prm"] for c in r["candidates"]]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        assert r["cost"]["prm"]["calls"] >= info["expansions"]  # every expansion was scored
        assert r["cost"]["policy"]["completion_tokens"] > 0


async def test_dvts_runs_independent_subtrees(tiny_model_dir, problems_file, tmp_path):
    recipe = search_recipe(tiny_model_dir, problems_file, tmp_path,
                           {"name": "dvts", "subtrees": 3, "expansions": 2, "max_depth": 2, "separator": " ",
                            "step_tokens": 4, "select": "weighted"})
    records = await run(recipe, tmp_path / "dvts")
    for r in records:
        assert r["status"] == "ok", r.get("error")
        assert len(r["candidates"]) == 3 and r["info"]["subtrees"] == 3


async def test_search_without_a_step_scorer_says_so(tiny_model_dir, problems_file, tmp_path):
    recipe = search_recipe(tiny_model_dir, problems_file, tmp_path, {"name": "beam_search", "prm": "nope"})
    records = await run(recipe, tmp_path / "bad", limit=1)
    assert records[0]["status"] == "error" and "step scorer named 'nope'" in records[0]["error"]
    with pytest.raises(Exception, match="select"):
        from tts.strategies.beam import BeamSearch
        BeamSearch(select="vote")


async def test_lookahead_rolls_out_greedy_steps_before_scoring(tiny_model_dir, problems_file, tmp_path):
    base = {"name": "beam_search", "beam_width": 2, "expansions": 2, "max_depth": 2, "separator": " ",
            "step_tokens": 4}
    plain = await run(search_recipe(tiny_model_dir, problems_file, tmp_path, base), tmp_path / "p", limit=2)
    look = await run(search_recipe(tiny_model_dir, problems_file, tmp_path, {**base, "lookahead": 1}),
                     tmp_path / "l", limit=2)
    for a, b in zip(plain, look):
        assert b["status"] == "ok"
        # every live expansion adds one greedy roll-out call
        assert b["cost"]["policy"]["calls"] > a["cost"]["policy"]["calls"]


async def test_step_confidence_guides_beam_search_with_the_policys_own_likelihood(toy_hf, tmp_path):
    import math

    import yaml

    from conftest import ROOT
    from tts.build import build_pieces
    from tts.controller import Controller
    from tts.recipe import parse_recipe
    from tts.records import read_records

    recipe = yaml.safe_load((ROOT / "recipes" / "toy-beam-search.yaml").read_text())
    pieces = build_pieces(parse_recipe(recipe))
    await Controller(pieces, tmp_path / "beam", limit=4, progress=False).run()
    records = read_records(tmp_path / "beam")
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    texts = {p.id: p.problem for p in pieces.problems(4)}
    for r in records:
        best = r["candidates"][0]
        steps = [s for s in best["text"].split(";") if s.strip()]
        assert len(steps) >= 2 and best["answer"] is not None  # a whole chain, e.g. 18+36=54;54-30=24#24
        prompt = toy_hf.tokenizer.encode(texts[r["id"]] + ";")
        ids = [toy_hf.tokenizer.encode(s + (";" if i < len(steps) - 1 else ""), add_special_tokens=False)
               for i, s in enumerate(steps)]
        lps = await toy_hf.score(prompt, [t for chunk in ids for t in chunk])
        at, expect = 0, []
        for chunk in ids:
            expect.append(math.exp(sum(lps[at: at + len(chunk)]) / len(chunk)))
            at += len(chunk)
        assert best["scores"]["step_confidence"] == pytest.approx(min(expect), rel=1e-3)
