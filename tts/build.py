"""Turn a validated Recipe into runtime pieces: backends (shared between roles that name the same
model), roles, strategy, selectors, extractor, grader and dataset. `check` builds everything but
the models, so a recipe can be verified without loading weights."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tts.backends.base import Backend
from tts.components import RecipeError, build, check_params
from tts.prompts import PromptSpec
from tts.recipe import Recipe
from tts.registry import RegistryError, resolve
from tts.roles import Role
from tts.strategies.base import GenerateThenSelect, Search
from tts.types import Problem, Sampling


@dataclass
class Pieces:
    """Everything the controller needs, built from one recipe."""

    recipe: Recipe
    strategy: Search
    selectors: dict[str, Any]
    extractor: Any
    grader: Any
    dataset: Any
    sweep_aggregators: list[Any] = field(default_factory=list)
    cost_model: Any = None
    backends: dict[str, Backend] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)

    def problems(self, limit: int | None = None) -> list[Problem]:
        """The dataset's problems, the first `limit` (else the recipe's `limit`) when given."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be a positive number of problems, got {limit}")
        problems = self.dataset.load()
        limit = limit if limit is not None else self.recipe.limit
        return problems[:limit] if limit else problems


def sampling_from(spec: dict[str, Any], where: str) -> Sampling:
    params = check_params(Sampling, spec, "sampling", where)
    try:
        return Sampling(**params)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where}: {exc}") from None


def _backend_factory(name: str, where: str) -> Any:
    try:
        return resolve("backends", name)
    except RegistryError as exc:
        raise RecipeError(f"{where}.backend: {exc}") from None


def _unique_labels(aggregators: list[Any]) -> None:
    """Name repeated aggregators after their selector (`best(confidence)`), so table columns differ."""
    names = [a.name for a in aggregators]
    for agg in aggregators:
        if names.count(agg.name) > 1 and getattr(agg, "selector", None):
            agg.name = f"{agg.name}({agg.selector})"
    labels = [a.name for a in aggregators]
    dup = next((n for n in labels if labels.count(n) > 1), None)
    if dup:
        raise RecipeError(f"sweep.aggregators: '{dup}' appears twice; give one of them an 'as:' name")


def build_pieces(recipe: Recipe, with_backends: bool = True,
                 backends: dict[str, Backend] | None = None) -> Pieces:
    """Build the recipe's components; backends are constructed (not yet started) if asked. Pass
    `backends` to share engines between builds (levels of one run): same engine key, same backend."""
    strat = recipe.strategy
    if strat.generator is not None:
        generator = build("generators", strat.generator, "strategy.generator")
        aggregator = build("aggregators", strat.aggregator, "strategy.aggregator")
        strategy: Search = GenerateThenSelect(generator, aggregator, strat.n)
    else:
        strategy = build("searches", strat.search, "strategy.search")
    selectors = {}
    for i, spec in enumerate(recipe.selectors):
        sel = build("selectors", spec, f"selectors.{i}")
        selectors[sel.name] = sel
    sweep_aggs = [build("aggregators", s, f"sweep.aggregators.{i}")
                  for i, s in enumerate(recipe.sweep.aggregators)] if recipe.sweep else []
    _unique_labels(sweep_aggs)
    pieces = Pieces(recipe, strategy, selectors, build("extractors", recipe.extractor, "extractor"),
                    build("graders", recipe.grader, "grader"), build("datasets", recipe.dataset, "dataset"),
                    sweep_aggs, cost_model=build("cost_models", recipe.cost, "cost"))
    if backends is not None:
        pieces.backends = backends
    prompt = PromptSpec(recipe.prompt.system, recipe.prompt.template,
                        [s.model_dump() for s in recipe.prompt.few_shot],
                        recipe.prompt.answer_instruction, recipe.prompt.chat)
    for role_name, spec in recipe.roles.items():
        where = f"roles.{role_name}"
        factory = _backend_factory(spec.backend, where)
        engine = check_params(factory, {"model": spec.model, **spec.engine}, f"backend '{spec.backend}'",
                              f"{where}.engine")
        sampling = sampling_from(spec.sampling, f"{where}.sampling")
        if not with_backends:
            continue
        key = json.dumps({"backend": spec.backend, **engine}, sort_keys=True, default=str)
        if key not in pieces.backends:
            pieces.backends[key] = factory(**engine)
        pieces.roles[role_name] = Role(role_name, pieces.backends[key], sampling, spec.chat, prompt)
    return pieces


def check_recipe(recipe: Recipe) -> Pieces:
    """Build every component except the models: catches wrong names and fields without weights."""
    return build_pieces(recipe, with_backends=False)
