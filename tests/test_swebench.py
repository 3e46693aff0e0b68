"""SWE-bench end to end on a small git repository made here (a bug, its failing test, a fix):
the agentless generator (tiny model + planted patches) makes candidates, the hybrid rule picks
the correct patch from regression and reproduction-script signals, the local runtime verifies it
in the sandbox, and the predictions file is what the harness reads. Plus the loaders and the
one-line refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

BUGGY = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
WRONG = "def add(a, b):\n    return a * b\n\n\ndef sub(a, b):\n    return a - b\n"
BREAKS_SUB = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a + b\n"
ISSUE = "calc.ops.add returns the difference of its arguments instead of their sum: add(2, 3) gives -1."


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def diff_of(repo: Path, new_text: str, path: str = "calc/ops.py") -> str:
    """A patch made by git itself (what the harness applies)."""
    (repo / path).write_text(new_text)
    out = git(repo, "diff")
    git(repo, "checkout", "--", path)
    return out


@pytest.fixture(scope="module")
def toy_instance(tmp_path_factory):
    root = tmp_path_factory.mktemp("swe")
    repo = root / "repos" / "toy__calc"
    (repo / "calc").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "calc" / "__init__.py").write_text("")
    (repo / "calc" / "ops.py").write_text(BUGGY)
    (repo / "tests" / "test_ops.py").write_text("from calc.ops import sub\n\n\ndef test_sub():\n    assert sub(5, 3) == 2\n")
    git(repo, "init", "-q")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "tests" / "test_add.py").write_text("from calc.ops import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    git(repo, "add", "-N", "tests/test_add.py")
    test_patch = git(repo, "diff")
    git(repo, "rm", "-q", "--cached", "tests/test_add.py")
    (repo / "tests" / "test_add.py").unlink()
    patches = {"gold": diff_of(repo, FIXED), "wrong": diff_of(repo, WRONG), "breaks_sub": diff_of(repo, BREAKS_SUB),
               "garbage": "--- a/calc/nothere.py\n+++ b/calc/nothere.py\n@@ -1 +1 @@\n-x\n+y\n"}
    row = {"repo": "toy/calc", "instance_id": "toy__calc-1", "base_commit": base, "patch": patches["gold"],
           "test_patch": test_patch, "problem_statement": ISSUE, "version": "0.1",
           "FAIL_TO_PASS": json.dumps(["tests/test_add.py::test_add"]),
           "PASS_TO_PASS": json.dumps(["tests/test_ops.py::test_sub"])}
    (root / "instances.jsonl").write_text(json.dumps(row) + "\n")
    (root / "planted.json").write_text(json.dumps({"toy__calc-1": [patches[k] for k in ("wrong", "garbage",
                                                                                         "breaks_sub", "gold")]}))
    scripts = ["from calc.ops import add\nimport sys\nsys.exit(0 if add(2, 3) == 5 else 2)\n",
               "from calc.ops import add\nimport sys\nsys.exit(0 if add(0, 0) == 0 else 2)\n",  # weak voter
               "from calc.ops import add\nimport sys\nsys.exit(0 if add(2, 2) == 4 else 2)\n"]
    (root / "tests.json").write_text(json.dumps({"toy__calc-1": scripts}))
    return {"root": root, "repos": root / "repos", "patches": patches, "base": base}


def test_loader_hides_the_oracle_fields(toy_instance):
    from tts.evals.swebench import SWEBench

    (p,) = SWEBench(path=str(toy_instance["root"] / "instances.jsonl"), repos_dir=str(toy_instance["repos"])).load()
    assert p.meta["repo_dir"].endswith("toy__calc") and p.meta["PASS_TO_PASS"] == ["tests/test_ops.py::test_sub"]
    assert "FAIL_TO_PASS" not in p.meta and p.meta["hidden"]["FAIL_TO_PASS"] == ["tests/test_add.py::test_add"]


@pytest.mark.skipif(not os.environ.get("TTS_DATA_DIR"), reason="TTS_DATA_DIR not set")
def test_offline_lite_and_verified_load():
    from tts.evals.swebench import SWEBenchLite, SWEBenchVerified

    lite = SWEBenchLite().load()
    assert len(lite) == 300 and all(p.meta["hidden"]["FAIL_TO_PASS"] for p in lite)
    assert len(SWEBenchLite(split="dev").load()) == 23
    verified = SWEBenchVerified().load()
    assert len(verified) == 500 and not verified[0].meta["hidden"]["FAIL_TO_PASS"]


async def test_local_runtime_verifies_patches(toy_instance):
    from tts.evals.swebench import SWEBench
    from tts.verifiers.swebench import SWEBenchGrader

    (p,) = SWEBench(path=str(toy_instance["root"] / "instances.jsonl"), repos_dir=str(toy_instance["repos"])).load()
    grader = SWEBenchGrader(runtime="local")
    pt = toy_instance["patches"]
    grades = await grader.grade(p, [pt["gold"], pt["wrong"], pt["breaks_sub"], pt["garbage"], None])
    assert grades == [1.0, 0.0, 0.0, 0.0, 0.0]
    await grader.close()


def test_harness_runtime_says_docker_is_missing_in_one_line(monkeypatch):
    from tts.verifiers.swebench import SWEBenchGrader, SWEError

    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(SWEError, match="needs Docker") as err:
        SWEBenchGrader(runtime="harness")
    assert "\n" not in str(err.value)


async def test_swebench_recipe_end_to_end(toy_instance, tiny_model_dir, tmp_path):
    """The shipped recipe on the toy instance: a tiny model samples (it cannot write the fix), planted
    patches join; the hybrid rule picks the gold patch, the local runtime resolves it, and the
    predictions file applies to a fresh checkout."""
    from tts.records import read_records
    from tts.runner import run_recipe
    from tts.verifiers.swebench import write_predictions

    root = toy_instance["root"]
    overrides = [
        "dataset.name=swebench_lite", f"dataset.path={root / 'instances.jsonl'}", f"dataset.repos_dir={toy_instance['repos']}",
        "dataset.instances=null",
        f"roles.policy.model={tiny_model_dir}", "roles.policy.backend=hf", "roles.policy.engine={}",
        "roles.policy.sampling.max_tokens=16", f"roles.verifier.model={tiny_model_dir}", "roles.verifier.backend=hf",
        "roles.verifier.engine={}", "strategy.n=2", "strategy.generator.name=plugins:PlantedAgentless", f"strategy.generator.planted={root / 'planted.json'}",
        f"selectors.2.tests_file={root / 'tests.json'}", "sweep.n=[1,2]", "concurrency=1",
    ]
    summary = await run_recipe(ROOT / "recipes" / "swebench-lite.yaml", overrides, tmp_path / "run")
    (record,) = read_records(tmp_path / "run")
    assert record["status"] == "ok", record.get("error")
    assert record["answer"] == toy_instance["patches"]["gold"] and record["grade"] == 1.0
    by_patch = {c["answer"]: c for c in record["candidates"] if c.get("answer")}
    gold = by_patch[toy_instance["patches"]["gold"]]
    assert gold["scores"]["swe_regression"] == 1.0 and gold["scores"]["swe_testgen"] == 1.0
    assert by_patch[toy_instance["patches"]["breaks_sub"]]["scores"]["swe_regression"] == 0.0
    assert summary["accuracy"]["mean"] == 1.0

    preds = tmp_path / "preds.jsonl"
    assert write_predictions([record], preds, "tts-toy") == 1
    cli = subprocess.run([str(Path(sys.executable).with_name("tts")), "swebench", "predictions", str(tmp_path / "run"),
                          "--out", str(tmp_path / "cli.jsonl"), "--model", "tts-toy"], capture_output=True, text=True)
    assert cli.returncode == 0 and (tmp_path / "cli.jsonl").read_text() == preds.read_text()
    (line,) = [json.loads(x) for x in preds.read_text().splitlines()]
    assert set(line) == {"instance_id", "model_name_or_path", "model_patch"} and line["instance_id"] == "toy__calc-1"
    fresh = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", str(toy_instance["repos"] / "toy__calc"), str(fresh)], check=True)
    (fresh / "p.diff").write_text(line["model_patch"])
    assert subprocess.run(["git", "-C", str(fresh), "apply", "--check", "p.diff"]).returncode == 0
