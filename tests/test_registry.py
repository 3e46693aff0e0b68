"""Registries: built-ins by name, plug-ins by entry point (a throwaway distribution on sys.path)
and by dotted path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tts.components import RecipeError, build
from tts.registry import RegistryError, available, resolve

TTS = str(Path(sys.executable).with_name("tts"))

PLUGIN = '''
from tts.verifiers.base import Grader

class AlwaysRight(Grader):
    """Grades every answer correct (a stand-in for a user's own verifier)."""
    def __init__(self, credit: float = 1.0):
        self.credit = credit
    async def grade(self, problem, answers):
        return [self.credit for _ in answers]
'''


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """A throwaway distribution 'tts-plugin-demo' registering grader 'always_right'."""
    (tmp_path / "demo_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "tts_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tts-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tts.graders]\nalways_right = demo_plugin:AlwaysRight\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_entry_point_plugin_is_usable_by_name(plugin_path):
    assert "always_right" in available("graders")
    grader = build("graders", {"name": "always_right", "credit": 0.5}, "grader")
    import asyncio

    from tts.types import Problem

    assert asyncio.run(grader.grade(Problem("p", "x", "1"), ["2", None])) == [0.5, 0.5]
    with pytest.raises(RecipeError, match="grader.credit"):
        build("graders", {"name": "always_right", "credit": "lots"}, "grader")


def test_entry_point_plugin_is_listed_by_cli(plugin_path):
    import os

    env = dict(os.environ, PYTHONPATH=str(plugin_path), COLUMNS="200")
    out = subprocess.run([TTS, "list"], capture_output=True, text=True, env=env, check=True).stdout
    assert "always_right" in out and "tts-plugin-demo" in out


def test_dotted_path_and_unknown_names():
    assert resolve("aggregators", "majority").__name__ == "Majority"
    assert resolve("graders", "tts.verifiers.exact:ExactGrader").__name__ == "ExactGrader"
    with pytest.raises(RegistryError, match="known: "):
        resolve("graders", "psychic")
    with pytest.raises(RegistryError, match="cannot import"):
        resolve("graders", "no_such_module:Thing")
