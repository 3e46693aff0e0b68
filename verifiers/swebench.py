"""Running candidate patches of a SWE-bench instance: a clean tree at `base_commit`, patches and
tests applied and run in the sandbox (`local` runtime: pytest test ids, the interpreter you give
the sandbox), the official Docker harness (`harness` runtime), the `swebench` grader, and the
predictions file the harness reads."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import shutil
import subprocess
import tarfile
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tts.types import Problem
from tts.verifiers.base import Grader
from tts.verifiers.sandbox import Sandbox, sandbox_from

log = logging.getLogger(__name__)
MARK = "__TTS_SWE_RESULTS__"


class SWEError(RuntimeError):
    """An instance that cannot be run here; one line saying why and what to do."""


RUNNER = r'''
import json, re, subprocess, sys
spec = json.load(open("swe_job.json"))
def apply(name):
    r = subprocess.run(["git", "apply", "-p1", "--whitespace=nowarn", name], capture_output=True, text=True)
    return r.returncode == 0, r.stderr[-2000:]
out = {"applied": True, "log": ""}
for name in spec["patches"]:
    ok, err = apply(name)
    if not ok:
        out.update(applied=False, log=f"{name}: {err}")
        print(MARK + json.dumps(out)); sys.exit(0)
if spec["script"]:
    r = subprocess.run([sys.executable, "-B", spec["script"]], capture_output=True, text=True, timeout=spec["timeout"])
    out.update(exit_code=r.returncode, log=(r.stdout + r.stderr)[-spec["max_output"]:])
    print(MARK + json.dumps(out)); sys.exit(0)
status = {}
if spec["tests"]:
    files = sorted({t.split("::")[0] for t in spec["tests"]})
    r = subprocess.run([sys.executable, "-B", "-m", "pytest", "-rA", "-q", "-p", "no:cacheprovider", *files],
                       capture_output=True, text=True, timeout=spec["timeout"])
    for line in r.stdout.splitlines():
        m = re.match(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)", line)
        if m:
            status[m.group(2)] = m.group(1)
    out["log"] = r.stdout[-spec["max_output"]:]
out["status"] = {t: status.get(t, "MISSING") for t in spec["tests"]}
print(MARK + json.dumps(out))
'''.replace("MARK", repr(MARK))


def pytest_ids(tests: list[str], instance: str) -> list[str]:
    """The local runtime runs pytest ids (`path.py::name`); other runners need the harness."""
    bad = [t for t in tests if "::" not in t or not t.split("::")[0].endswith(".py")]
    if bad:
        raise SWEError(f"{instance}: test '{bad[0]}' is not a pytest id; the local runtime runs pytest suites "
                       "only (use runtime: harness with Docker for this repository)")
    return tests


@dataclass
class Trees:
    """Clean source trees at a commit, extracted once with `git archive` and reused by every run."""

    cache: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tts-swe-trees-")))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tree(self, problem: Problem) -> Path:
        with self.lock:  # concurrent runs of one instance extract its tree once
            return self._tree(problem)

    def _tree(self, problem: Problem) -> Path:
        meta = problem.meta
        repo, commit = meta.get("repo_dir"), meta["base_commit"]
        if not repo:
            raise SWEError(f"{problem.id}: repository {meta['repo']} is not on disk; clone it into "
                           f"dataset.repos_dir as {meta['repo'].replace('/', '__')}")
        out = self.cache / f"{meta['repo'].replace('/', '__')}-{commit[:12]}"
        if out.exists():
            return out
        tmp = out.with_suffix(".part")
        tmp.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", repo, "archive", "--format=tar", commit], capture_output=True)
        if archive.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise SWEError(f"{problem.id}: commit {commit[:12]} is not in {repo} "
                           f"({archive.stderr.decode(errors='replace').strip()[:200]})")
        with tarfile.open(fileobj=__import__("io").BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        tmp.rename(out)
        return out

    def file(self, problem: Problem, path: str) -> str | None:
        target = self.tree(problem) / path
        return target.read_text(errors="replace") if target.is_file() else None

    def close(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)


_SHARED: Trees | None = None


def shared_trees() -> Trees:
    """The process's tree cache: the generator, the signal selectors and the grader all read the same
    extracted trees (each instance's tree is archived once), removed when the process exits."""
    global _SHARED
    if _SHARED is None:
        _SHARED = Trees()
        atexit.register(_SHARED.close)
    return _SHARED


class Workspace:
    """Runs patches, tests and test scripts of one instance's tree in the sandbox."""

    def __init__(self, sandbox: Sandbox | None = None, trees: Trees | None = None, timeout: float = 600.0,
                 max_output: int = 20000) -> None:
        self.sandbox = sandbox or Sandbox()
        self.trees = trees or shared_trees()
        self.timeout, self.max_output = timeout, max_output

    async def run(self, problem: Problem, patches: list[str], tests: list[str] | None = None,
                  script: str | None = None) -> dict[str, Any]:
        """Apply `patches` in order, then run pytest `tests` or a test `script`; the parsed outcome."""
        tree = await asyncio.to_thread(self.trees.tree, problem)
        files = {f"p{i}.diff": p for i, p in enumerate(patches)}
        job = {"patches": list(files), "tests": tests or [], "script": "swe_script.py" if script else None,
               "timeout": self.timeout, "max_output": self.max_output}
        files.update({"swe_job.json": json.dumps(job), "swe_runner.py": RUNNER})
        if script:
            files["swe_script.py"] = script
        limits = replace(self.sandbox.limits, wall_seconds=self.timeout + 30, cpu_seconds=int(self.timeout))
        res = await self.sandbox.run(["python", "-B", "swe_runner.py"], files, tree=tree, limits=limits)
        for line in reversed(res.stdout.splitlines()):
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        return {"applied": False, "log": f"runner failed: exit {res.exit_code}, {res.stderr[-500:]}",
                "timed_out": res.timed_out}


class LocalRuntime:
    """Resolved iff the patch applies and every FAIL_TO_PASS and PASS_TO_PASS test passes."""

    name = "local"

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    async def verify(self, problem: Problem, patch: str) -> dict[str, Any]:
        hidden = problem.meta.get("hidden") or {}
        f2p = hidden.get("FAIL_TO_PASS") or []
        if not f2p or not hidden.get("test_patch"):
            raise SWEError(f"{problem.id}: no FAIL_TO_PASS / test_patch (the offline Verified copy has 5 fields); "
                           "use SWE-bench Lite or the hub dataset")
        tests = pytest_ids(list(f2p) + list(problem.meta.get("PASS_TO_PASS", [])), problem.id)
        out = await self.workspace.run(problem, [patch, hidden["test_patch"]], tests)
        status = out.get("status", {})
        out["resolved"] = bool(out.get("applied")) and bool(status) and all(v == "PASSED" for v in status.values())
        return out


class HarnessRuntime:
    """The official `swebench` Docker harness (needs Docker and `pip install swebench`)."""

    name = "harness"

    def __init__(self, dataset: str = "princeton-nlp/SWE-bench_Lite", max_workers: int = 4,
                 run_id: str = "tts", timeout: int = 1800) -> None:
        self.dataset, self.max_workers, self.run_id, self.timeout = dataset, max_workers, run_id, timeout
        check_docker()

    async def verify(self, problem: Problem, patch: str) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            preds = Path(tmp) / "predictions.jsonl"
            preds.write_text(json.dumps(prediction(problem.id, patch, "tts")) + "\n")
            cmd = ["python", "-m", "swebench.harness.run_evaluation", "--dataset_name", self.dataset,
                   "--predictions_path", str(preds), "--instance_ids", problem.id, "--run_id", self.run_id,
                   "--max_workers", str(self.max_workers), "--timeout", str(self.timeout), "--report_dir", tmp]
            proc = await asyncio.create_subprocess_exec(*cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            out, _ = await proc.communicate()
            reports = list(Path(tmp).glob(f"*.{self.run_id}.json"))
            resolved = bool(reports) and problem.id in json.loads(reports[0].read_text()).get("resolved_ids", [])
            return {"resolved": resolved, "log": out.decode(errors="replace")[-4000:]}


def check_docker() -> None:
    if shutil.which("docker") is None:
        raise SWEError("runtime harness needs Docker, which is not installed here; use runtime: local with the "
                       "repository on disk")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        raise SWEError("runtime harness needs a running Docker daemon ('docker info' failed); use runtime: local")
    try:
        import swebench  # noqa: F401
    except ImportError:
        raise SWEError("runtime harness needs the swebench package: pip install swebench") from None


RUNTIMES = {"local": LocalRuntime, "harness": HarnessRuntime}


class SWEBenchGrader(Grader):
    """1.0 iff the runtime resolves the instance with the patch (identical patches verified once)."""

    name = "swebench"

    def __init__(self, runtime: str = "local", sandbox: dict[str, Any] | None = None, timeout: float = 600.0,
                 harness: dict[str, Any] | None = None) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"swebench runtime must be one of {', '.join(RUNTIMES)}, got '{runtime}'")
        self.workspace = Workspace(sandbox_from(sandbox), timeout=timeout)
        self.runtime = LocalRuntime(self.workspace) if runtime == "local" else HarnessRuntime(**(harness or {}))

    async def grade(self, problem: Problem, answers: list[str | None]) -> list[float]:
        unique = sorted({a for a in answers if a and a.strip()})
        results = await asyncio.gather(*(self.runtime.verify(problem, a) for a in unique))
        resolved = {a: r["resolved"] for a, r in zip(unique, results)}
        return [1.0 if a and resolved.get(a) else 0.0 for a in answers]

def prediction(instance_id: str, patch: str | None, model: str) -> dict[str, Any]:
    """One line of a predictions file in the harness's format."""
    return {"instance_id": instance_id, "model_name_or_path": model, "model_patch": patch or ""}


def write_predictions(records: list[dict[str, Any]], path: Path, model: str) -> int:
    """The chosen patch of every finished instance of a run, as the harness's JSONL; returns the count."""
    lines = [json.dumps(prediction(r["id"], r.get("answer"), model)) for r in records if r.get("status") == "ok"]
    path.write_text("".join(line + "\n" for line in lines))
    return len(lines)
