"""Programs and tests for code problems: the solution module a candidate's code makes, the public
tests a selector may use (HumanEval docstring examples, MBPP's first assert), a runner script that
reports each test separately, and the hidden-test check the grader runs (the official harnesses'
programs). Everything here only builds text; `tts.verifiers.sandbox` runs it."""

from __future__ import annotations

import ast
import doctest
import json
import re
from typing import Any

from tts.types import Problem

MARK = "__TTS_TEST_RESULTS__"


def solution_module(problem: Problem, code: str) -> str:
    """The candidate's code as a module: HumanEval completions are appended to the prompt unless the
    code defines the entry point itself (then the prompt's imports are kept); MBPP gets its imports."""
    meta = problem.meta
    if meta.get("kind") == "humaneval":
        entry = meta["entry_point"]
        if re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.M):
            imports = [ln for ln in meta["prompt"].splitlines() if ln.startswith(("import ", "from "))]
            return "\n".join(imports) + "\n" + code
        return meta["prompt"] + code
    return "\n".join(meta.get("test_imports", [])) + "\n" + code


def hidden_check(problem: Problem, code: str) -> str:
    """The official harness's program: exit status 0 iff every hidden test passes."""
    meta, module = problem.meta, solution_module(problem, code)
    if meta.get("kind") == "humaneval":
        return f"{module}\n\n{meta['test']}\n\ncheck({meta['entry_point']})\n"
    return module + "\n\n" + "\n".join(meta["test_list"]) + "\n"


def _clean(text: str, literal: bool) -> str | None:
    """`text` as one clean expression (comments dropped), or None: for an expected value it must be a
    literal, for a call every argument must be (so `f(a)` with an undefined name is skipped)."""
    try:
        tree = ast.parse(text, mode="eval")
        if literal:
            ast.literal_eval(tree)
        elif isinstance(tree.body, ast.Call):
            for arg in [*tree.body.args, *(k.value for k in tree.body.keywords)]:
                ast.literal_eval(arg)
        return ast.unparse(tree)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


_ARROW = re.compile(r"^\s*(?P<call>{name}\(.*\))\s*(?:==>|=>|->|➞|==|should return|returns?)\s*(?P<want>.+?)\s*$")


def doctest_asserts(prompt: str, entry: str | None = None) -> list[str]:
    """Examples of a docstring as asserts: `>>> f(x)` / `expected` pairs, and lines like
    `f(x) ==> y` or `f(x) should return y` for the entry point. Only literal expected values are
    used (printed text and prose are skipped)."""
    out = []
    for ex in doctest.DocTestParser().get_examples(prompt):
        # the docstring's closing quotes often follow the last example's output directly
        source, want = ex.source.strip(), ex.want.split('"""')[0].split("'''")[0].strip()
        call, value = _clean(source, False), _clean(want, True) if want else None
        if call and value:
            out.append(f"assert ({call}) == ({value})")
    if entry and not out:
        arrow = re.compile(_ARROW.pattern.format(name=re.escape(entry)))
        for line in prompt.splitlines():
            m = arrow.match(line.strip().rstrip(".,;"))
            call, value = (_clean(m["call"], False), _clean(m["want"], True)) if m else (None, None)
            if call and value:
                out.append(f"assert ({call}) == ({value})")
    return out


def public_tests(problem: Problem) -> list[str]:
    """Tests a selector may use without touching the hidden ones."""
    meta = problem.meta
    if meta.get("kind") == "humaneval":
        return doctest_asserts(meta["prompt"], meta.get("entry_point"))
    return list(meta.get("public_tests", []))


def entry_point(problem: Problem) -> str | None:
    meta = problem.meta
    if meta.get("entry_point"):
        return meta["entry_point"]
    for test in meta.get("public_tests", []):
        names = re.findall(r"\b([A-Za-z_]\w*)\s*\(", test)
        defined = re.findall(r"^\s*def\s+(\w+)", meta.get("reference_solution") or "", re.M)
        for name in names:
            if name in defined:
                return name
        skip = {"set", "sorted", "abs", "round", "list", "tuple", "len", "str", "int", "float", "isclose", "math"}
        rest = [n for n in names if n not in skip]
        if rest:
            return rest[0]
    return None


def runner_script(tests: list[str], timeout_each: float = 5.0) -> str:
    """Loads solution.py, runs each test in its namespace, prints one JSON list of pass/fail."""
    return (
        "import json, signal, sys\n"
        f"TESTS = {json.dumps(tests)}\n"
        "ns = {'__name__': 'solution'}\n"
        "try:\n"
        "    exec(compile(open('solution.py').read(), 'solution.py', 'exec'), ns)\n"
        "except BaseException as exc:\n"
        f"    print({MARK!r} + json.dumps([False] * len(TESTS)))\n"
        "    sys.exit(1)\n"
        "def _alarm(*_):\n"
        "    raise TimeoutError('test took too long')\n"
        "signal.signal(signal.SIGALRM, _alarm)\n"
        "results = []\n"
        "for t in TESTS:\n"
        f"    signal.setitimer(signal.ITIMER_REAL, {timeout_each})\n"
        "    try:\n"
        "        exec(t, ns)\n"
        "        results.append(True)\n"
        "    except BaseException:\n"
        "        results.append(False)\n"
        "    signal.setitimer(signal.ITIMER_REAL, 0)\n"
        f"print({MARK!r} + json.dumps(results))\n"
        "sys.exit(0 if all(results) else 1)\n"
    )


def parse_results(stdout: str, count: int) -> list[bool]:
    """The runner's per-test results (all failed if it never printed them)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARK):
            try:
                values: Any = json.loads(line[len(MARK):])
            except json.JSONDecodeError:
                break
            if isinstance(values, list) and len(values) == count:
                return [v is True for v in values]
            break
    return [False] * count


def python_blocks(text: str) -> list[str]:
    """The bodies of a text's fenced code blocks tagged python (or untagged)."""
    return re.findall(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", text, re.S)


def extract_code(text: str) -> str | None:
    """The code in a model's answer: its fenced blocks joined (python-tagged first), else the raw text."""
    blocks = python_blocks(text)
    if blocks:
        with_def = [b for b in blocks if re.search(r"^\s*(def|class|import|from)\s", b, re.M)]
        return "\n\n".join(with_def or blocks).rstrip() + "\n"
    stripped = text.rstrip()
    return stripped + "\n" if stripped else None
