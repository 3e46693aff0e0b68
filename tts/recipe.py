"""The recipe schema (pydantic). A recipe names a dataset, roles, a prompt block, a strategy
(generator + aggregator, or a search), selectors, a grader, an extractor, a budget, a sweep and
an output. A wrong field gets one line naming it and what was expected."""

from __future__ import annotations

import typing

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tts.components import RecipeError

Component = str | dict[str, Any]  # a registered name, or {name: ..., **params}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoleSpec(_Strict):
    """A model role: which backend serves which model, engine arguments and default sampling."""

    backend: str = "hf"
    model: str
    engine: dict[str, Any] = Field(default_factory=dict)
    sampling: dict[str, Any] = Field(default_factory=dict)
    chat: bool | None = None


class FewShot(_Strict):
    problem: str
    solution: str


class PromptBlock(_Strict):
    system: str | None = None
    template: str = "{problem}"
    few_shot: list[FewShot] = Field(default_factory=list)
    answer_instruction: str | None = None
    chat: bool = True

    @field_validator("template")
    @classmethod
    def _has_problem(cls, v: str) -> str:
        if "{problem}" not in v:
            raise ValueError("must contain the placeholder {problem}")
        return v


class StrategySpec(_Strict):
    """Either `generator` (+ `aggregator`, drawing `n` candidates) or `search`."""

    generator: Component | None = None
    aggregator: Component = "majority"
    n: int = Field(1, ge=1)
    search: Component | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "StrategySpec":
        if (self.generator is None) == (self.search is None):
            raise ValueError("give exactly one of 'generator' or 'search'")
        return self


class BudgetSpec(_Strict):
    unit: Literal["samples", "tokens", "eflops"] = "tokens"
    per_problem: float | None = Field(None, gt=0)
    run: float | None = Field(None, gt=0)


class SweepSpec(_Strict):
    """Smaller N answered from one run at the largest N (i.i.d. generators only)."""

    n: list[int] = Field(min_length=1)
    aggregators: list[Component] = Field(default_factory=list)
    subsets: int = Field(200, ge=1)

    @field_validator("n")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(k < 1 for k in v):
            raise ValueError("every N must be >= 1")
        return sorted(set(v))


class LevelsSpec(_Strict):
    """Compute levels for ARISE: one recipe field set to each value in turn (ordered by compute),
    each (problem, level) cell run min_runs..max_runs times until its CV settles."""

    field: str
    values: list[Any] = Field(min_length=2)
    min_runs: int = Field(3, ge=1)
    max_runs: int = Field(10, ge=1)
    threshold: float = Field(0.5, ge=0)
    total_runs: int | None = Field(None, ge=1)
    tokens: Literal["total", "completion"] = "total"

    @field_validator("field")
    @classmethod
    def _not_structural(cls, v: str) -> str:
        if v.split(".")[0] in ("levels", "seed", "output", "name", "dataset", "limit"):
            raise ValueError(f"'{v}' cannot vary across levels")
        return v

    @model_validator(mode="after")
    def _runs_ordered(self) -> "LevelsSpec":
        if self.max_runs < self.min_runs:
            raise ValueError(f"max_runs ({self.max_runs}) is below min_runs ({self.min_runs})")
        return self


class OutputSpec(_Strict):
    dir: str = "runs"
    name: str | None = None
    store_text: bool = True


class Recipe(_Strict):
    name: str
    description: str = ""
    seed: int = 0
    dataset: Component
    limit: int | None = Field(None, ge=1)
    roles: dict[str, RoleSpec] = Field(min_length=1)
    prompt: PromptBlock = Field(default_factory=PromptBlock)
    strategy: StrategySpec
    selectors: list[Component] = Field(default_factory=list)
    grader: Component = "exact"
    extractor: Component = "last_number"
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    cost: Component = "kinetics"
    sweep: SweepSpec | None = None
    levels: LevelsSpec | None = None
    concurrency: int = Field(16, ge=1)
    output: OutputSpec = Field(default_factory=OutputSpec)

    @model_validator(mode="after")
    def _sweep_fits(self) -> "Recipe":
        if self.sweep and self.strategy.generator is not None and max(self.sweep.n) > self.strategy.n:
            raise ValueError(f"sweep.n goes up to {max(self.sweep.n)} but strategy.n is {self.strategy.n}")
        return self

    def resolved(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `--set a.b.c=value` (value parsed as YAML) to a raw recipe mapping."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise RecipeError(f"--set {assignment!r}: expected key=value, e.g. roles.policy.model=./my-model")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    node: Any = data
    parts = key.split(".")
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise RecipeError(f"--set {key}: '{part}' is not a mapping in the recipe")
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def _model_at(parts: list[str]) -> Any:
    """The pydantic model that holds the field at `parts` (None when the path leaves the schema)."""
    model: Any = Recipe
    for part in parts:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        args = [a for a in (typing.get_args(field.annotation) or (field.annotation,)) if isinstance(a, type)]
        model = next((a for a in args if issubclass(a, BaseModel)), None)
        if model is None:
            return None
    return model


def _where(source: str, loc: str, overrides: list[str]) -> str:
    """`from --set KEY=VALUE` when an override wrote this field (or a field above it), else `in FILE`."""
    for assignment in reversed(overrides):
        key = assignment.partition("=")[0]
        if loc == key or loc.startswith(key + ".") or key.startswith(loc + "."):
            return f"from --set {assignment}"
    return f"in {source}"


def _error_line(source: str, exc: ValidationError, overrides: list[str] | None = None) -> str:
    """One format for every recipe error: field path, what was wrong, what is allowed, where it came from."""
    err = exc.errors()[0]
    parts = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "union"))]
    loc = ".".join(parts)
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    allowed = ""
    if err["type"] == "extra_forbidden":
        holder = _model_at(parts[:-1])
        if holder is not None:
            allowed = f"; allowed: {', '.join(holder.model_fields)}"
    extra = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{loc or 'recipe'}: {err['msg']}{shown}{allowed} ({_where(source, loc, overrides or [])}){extra}"


def parse_recipe(data: Any, source: str = "recipe", overrides: list[str] | None = None) -> Recipe:
    """Validate a raw mapping (after `--set` overrides) into a Recipe, or raise one-line RecipeError."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe must be a YAML mapping")
    for assignment in overrides or []:
        apply_override(data, assignment)
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(_error_line(source, exc, overrides)) from None


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a YAML recipe file; relative model and data paths stay relative to the working dir."""
    path = Path(path)
    if not path.exists():
        raise RecipeError(f"recipe not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_recipe(data, str(path), overrides)
