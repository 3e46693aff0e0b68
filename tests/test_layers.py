"""The allowed import directions (docs/design.md, "Layers"), checked on every first-party module by
parsing its imports: lower layers never import higher ones, cost is arithmetic, backends import no
method, and the core never imports strategies, verifiers or evals. Imports inside functions count too."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from conftest import ROOT

# module prefix -> layer; the longest matching prefix wins
LAYER_OF = {
    "tts": "foundation", "tts.types": "types",
    "tts.cost": "cost", "tts.toy": "toy", "tts.backends": "backends", "tts.learn": "learn",
    "tts.roles": "core", "tts.context": "core", "tts.build": "core", "tts.controller": "core",
    "tts.strategies.base": "contracts", "tts.strategies": "strategies", "tts.verifiers": "verifiers",
    "tts.evals": "evals", "tts.runner": "app", "tts.cli": "app", "tts.cli_code": "app",
    "tts.cli_learn": "app", "tts.cli_measure": "app", "tts.cli_common": "foundation",
}
BASE = {"types", "foundation"}
ALLOWED = {
    "types": {"types"},
    "foundation": BASE | {"cost"},
    "cost": {"cost", "types"},                       # arithmetic: no records, runs or methods
    "toy": BASE | {"toy"},
    "backends": BASE | {"backends", "cost", "toy"},  # no method, strategy, verifier or eval
    "learn": BASE | {"learn", "backends", "cost", "toy"},
    "core": BASE | {"core", "contracts", "backends", "cost", "toy"},
    "contracts": BASE | {"core", "contracts", "cost"},
    "verifiers": BASE | {"verifiers", "contracts", "cost"},
    "strategies": BASE | {"strategies", "contracts", "core", "verifiers", "learn", "cost"},
    "evals": BASE | {"evals", "core", "contracts", "strategies", "verifiers", "learn", "backends", "cost", "toy"},
    "app": set(LAYER_OF.values()),
}


def layer(module: str) -> str | None:
    keys = [k for k in LAYER_OF if module == k or module.startswith(k + ".")]
    return LAYER_OF[max(keys, key=len)] if keys else None


def module_files() -> dict[str, Path]:
    """Installed module name -> file, from the package folders pyproject maps."""
    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    out = {}
    for package, folder in dirs.items():
        for f in (ROOT / folder).rglob("*.py"):
            rel = f.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *rel))
            out[name.removesuffix(".__init__")] = f
    return out


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def crossings() -> list[tuple[str, str]]:
    bad = []
    for name, path in sorted(module_files().items()):
        src = layer(name)
        assert src is not None, f"{name} is in no layer: add it to LAYER_OF"
        for target in imports_of(path):
            dst = layer(target)
            if dst is not None and dst not in ALLOWED[src]:
                bad.append((name, target))
    return bad


def test_imports_follow_the_layers():
    bad = [f"{a} ({layer(a)}) imports {b} ({layer(b)})" for a, b in crossings()]
    assert not bad, "imports against the layers (docs/design.md):\n" + "\n".join(bad)


def test_old_top_level_import_names_are_gone():
    """`verifiers` and `evals` are other projects' names on PyPI: ours are tts.verifiers and tts.evals."""
    for name, path in module_files().items():
        for target in imports_of(path):
            assert target.split(".")[0] not in ("verifiers", "evals"), f"{name} imports {target}"


def test_every_package_folder_is_listed_for_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {n for n, p in module_files().items() if p.name == "__init__.py"}
    assert on_disk == listed, f"pyproject [tool.setuptools] packages differ from the folders: {on_disk ^ listed}"
