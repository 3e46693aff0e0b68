"""Call paths have one maker (`tts.seeds.call_path`, `ctx.call`): segments joined by "/", none empty
or with a stray "/"; and no strategy or verifier spells a call path by hand (checked on the source)."""

from __future__ import annotations

import ast

import pytest

from conftest import ROOT
from tts.seeds import call_path


def test_segments_are_joined_and_checked():
    assert call_path("think", 3, 1) == "think/3/1"
    assert call_path("beam/d2", "b0") == "beam/d2/b0"  # a parent path as the first segment
    for bad in [(), ("",), ("a", ""), ("/a",), ("a/",), ("a//b",)]:
        with pytest.raises(ValueError, match="call path segments"):
            call_path(*bad)


def _hand_written(node: ast.AST) -> bool:
    """A string literal or f-string with a "/" in its literal text: a call path spelled by hand."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return "/" in node.value
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.Constant) and "/" in str(v.value) for v in node.values)
    if isinstance(node, (ast.Tuple, ast.List)):
        return any(_hand_written(e) for e in node.elts)
    if isinstance(node, ast.Starred):
        return _hand_written(node.value)
    if isinstance(node, ast.GeneratorExp):
        return _hand_written(node.elt)
    return False


def test_no_call_path_is_spelled_by_hand():
    found = []
    for folder in ("tts/strategies", "verifiers", "tts/context.py"):
        files = [ROOT / folder] if folder.endswith(".py") else sorted((ROOT / folder).rglob("*.py"))
        for path in files:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.keyword) and node.arg in ("call", "calls", "call_prefix") \
                        and _hand_written(node.value):
                    found.append(f"{path.relative_to(ROOT)}:{node.value.lineno}")
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "seed" and node.args \
                        and _hand_written(node.args[0]):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, f"call paths written by hand (use ctx.call / call_path): {found}"
