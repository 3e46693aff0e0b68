"""Recipe schema: every mistake is one line naming the field; every shipped recipe builds."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from tts.build import check_recipe
from tts.components import RecipeError
from tts.recipe import load_recipe, parse_recipe

TTS = str(Path(sys.executable).with_name("tts"))
BASE = {
    "name": "t",
    "dataset": {"name": "jsonl", "path": "x.jsonl"},
    "roles": {"policy": {"model": "some/model", "sampling": {"max_tokens": 8}}},
    "strategy": {"generator": {"name": "sample"}, "aggregator": "majority", "n": 4},
}


def mutate(path: str, value):
    data = copy.deepcopy(BASE)
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


_DELETE = object()
CASES = [
    (mutate("strateg", {}), "strateg"),
    (mutate("roles.policy.model", _DELETE), "roles.policy.model"),
    (mutate("strategy.search", "beam"), "exactly one of"),
    (mutate("strategy.n", "many"), "strategy.n"),
    (mutate("strategy.generator", {"name": "smaple"}), "unknown generator 'smaple'"),
    (mutate("strategy.generator", {"name": "sample", "nn": 3}), "strategy.generator.nn"),
    (mutate("roles.policy.sampling", {"temprature": 1}), "roles.policy.sampling.temprature"),
    (mutate("roles.policy.sampling", {"temperature": -1}), "temperature"),
    (mutate("roles.policy.sampling", {"max_tokens": "lots"}), "roles.policy.sampling.max_tokens"),
    (mutate("prompt", {"template": "no placeholder"}), "prompt.template"),
    (mutate("budget", {"unit": "dollars"}), "budget.unit"),
    (mutate("roles.policy.engine", {"max_batch_rowz": 3}), "roles.policy.engine.max_batch_rowz"),
    (mutate("roles.policy.backend", "nope"), "roles.policy.backend"),
    (mutate("sweep", {"n": [1, 64]}), "sweep.n goes up to 64"),
    (mutate("selectors", [{"name": "confidence", "mode": "median"}]), "selectors.0"),
    (mutate("grader", "psychic"), "grader.name"),
    (mutate("strategy.aggregator", {"name": "weighted", "selector": 3}), "strategy.aggregator.selector"),
]


@pytest.mark.parametrize("data,needle", CASES, ids=[c[1] for c in CASES])
def test_each_schema_error_is_one_line_naming_the_field(data, needle):
    with pytest.raises(RecipeError) as info:
        check_recipe(parse_recipe(data, "r.yaml"))
    message = str(info.value)
    assert "\n" not in message
    assert needle in message


def test_overrides_and_bad_overrides():
    recipe = parse_recipe(copy.deepcopy(BASE), overrides=["roles.policy.model=/tmp/m", "strategy.n=8", "seed=5"])
    assert recipe.roles["policy"].model == "/tmp/m" and recipe.strategy.n == 8 and recipe.seed == 5
    with pytest.raises(RecipeError, match="key=value"):
        parse_recipe(copy.deepcopy(BASE), overrides=["strategy.n"])


def test_missing_and_malformed_recipe_files(tmp_path):
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)


RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


def test_there_are_recipes():
    assert RECIPES


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_shipped_recipe_loads_and_builds(path):
    check_recipe(load_recipe(path))


def test_cli_reports_a_bad_recipe_in_one_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(mutate("strategy.generator", {"name": "sample", "nn": 3})))
    proc = subprocess.run([TTS, "run", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "strategy.generator.nn" in proc.stderr
    assert subprocess.run([TTS, "check", str(path)], capture_output=True, text=True).returncode == 2


def test_cli_reports_a_model_that_will_not_load(tmp_path, problems_file):
    data = mutate("roles.policy.model", str(tmp_path / "no-such-model"))
    data["dataset"]["path"] = str(problems_file)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = subprocess.run([TTS, "run", str(path), "--out", str(tmp_path / "o")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("error:")
    assert "no-such-model" in proc.stderr


def test_help_is_fast():
    import time

    t0 = time.perf_counter()
    subprocess.run([TTS, "--help"], capture_output=True, check=True)
    assert time.perf_counter() - t0 < 5  # generous; typically ~0.2 s (no torch at start-up)
    out = subprocess.run([sys.executable, "-c", "import sys, tts.cli, tts.recipe, tts.controller; "
                          "print(any(m in sys.modules for m in ('torch', 'transformers', 'vllm')))"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
