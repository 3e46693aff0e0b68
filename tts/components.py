"""Building registered components from recipe specs, with one clear line for each mistake:
an unknown name, an unknown or missing field, or a value of the wrong type."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from tts.registry import RegistryError, resolve, singular


class RecipeError(ValueError):
    """A recipe that cannot be used; the message is one line naming the field."""


def split_spec(spec: Any, where: str) -> tuple[str, dict[str, Any]]:
    """`"name"` or `{"name": ..., **params}` -> (name, params)."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict) and isinstance(spec.get("name"), str):
        params = {k: v for k, v in spec.items() if k != "name"}
        return spec["name"], params
    raise RecipeError(f"{where}: expected a name or a mapping with 'name', got {spec!r}")


def _parameters(factory: Any) -> dict[str, inspect.Parameter]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = dict(inspect.signature(target).parameters)
    params.pop("self", None)
    return params


def _hints(factory: Any) -> dict[str, Any]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: skip type checks rather than fail
        return {}


def check_params(factory: Any, params: dict[str, Any], label: str, where: str) -> dict[str, Any]:
    """Validate `params` against the factory's signature and annotations; return coerced values."""
    from pydantic import TypeAdapter, ValidationError

    accepted = _parameters(factory)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    named = {k: p for k, p in accepted.items()
             if p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)}
    unknown = [k for k in params if k not in named]
    if unknown and not takes_any:
        expected = ", ".join(named) or "no fields"
        raise RecipeError(f"{where}.{unknown[0]}: unknown field for {label} (expected: {expected})")
    missing = [k for k, p in named.items() if p.default is inspect.Parameter.empty and k not in params]
    if missing:
        raise RecipeError(f"{where}.{missing[0]}: required by {label} but missing")
    hints, out = _hints(factory), dict(params)
    for key, value in params.items():
        if key in hints:
            try:
                adapter = TypeAdapter(hints[key])
            except Exception:  # a type pydantic cannot describe: the component checks it itself
                continue
            try:
                out[key] = adapter.validate_python(value)
            except ValidationError as exc:
                msg = exc.errors()[0]["msg"]
                raise RecipeError(f"{where}.{key}: {msg} (got {value!r})") from None
    return out


def build_nested(factory: Any, params: dict[str, Any], where: str) -> dict[str, Any]:
    """A component lists the fields that are components themselves in `nested = {field: kind}` (a
    generator's stopping rule, a training dataset); they are built here, checked like any other and
    named by their own field path in errors, so no constructor builds or names them."""
    out = dict(params)
    for field, kind in (getattr(factory, "nested", None) or {}).items():
        if isinstance(out.get(field), (str, dict)):
            out[field] = build(kind, out[field], f"{where}.{field}")
    return out


def build(kind: str, spec: Any, where: str) -> Any:
    """Resolve `spec`'s name in registry `kind` and construct it with validated params.

    An `as:` field renames the built object (two `confidence` selectors with other settings)."""
    name, params = split_spec(spec, where)
    alias = params.pop("as", None)  # lets one recipe use a component twice with other settings
    try:
        factory = resolve(kind, name)
    except RegistryError as exc:
        raise RecipeError(f"{where}.name: {exc}") from None
    label = f"{singular(kind)} '{name}'"
    params = check_params(factory, params, label, where)
    params = build_nested(factory, params, where)
    try:
        obj = factory(**params)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where}: {label}: {exc}") from None
    try:
        obj.name = str(alias or name)
    except AttributeError:  # a plain function or a frozen object keeps its own name
        pass
    return obj
