"""`agentless`: an Agentless-style patch generator for SWE-bench (reconstruction of the pipeline's
shape, not its prompts): localise files by BM25 retrieval of the issue over the repository's
Python files at `base_commit`, show the model the top files, ask for SEARCH/REPLACE edits, apply
them to the file texts and turn them into a unified diff; K samples are K candidates."""

from __future__ import annotations

import asyncio
import difflib
import math
import re
from collections import Counter
from typing import Any

from tts.context import StrategyContext
from tts.strategies.base import Generator
from tts.types import Candidate, Problem

PROMPT = """You are fixing an issue in the repository {repo}.

Issue:
{issue}

Relevant files:
{files}

Write the fix as one or more edits in this exact format (SEARCH must match the file exactly):

### path/to/file.py
<<<<<<< SEARCH
lines to replace
=======
new lines
>>>>>>> REPLACE
"""
EDIT = re.compile(r"###\s*(?P<path>\S+)\s*\n<<<<<<< SEARCH\n(?P<search>.*?)\n?=======\n(?P<replace>.*?)\n?>>>>>>> REPLACE",
                  re.S)


def tokens(text: str) -> list[str]:
    """Identifier pieces, lower-cased: `parse_header` / `parseHeader` -> parse, header."""
    out = []
    for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text):
        for part in re.split(r"_|(?<=[a-z])(?=[A-Z])", word):
            if len(part) > 1:
                out.append(part.lower())
    return out


def bm25_rank(query: str, docs: dict[str, str], k1: float = 1.5, b: float = 0.75) -> list[tuple[str, float]]:
    """Documents by BM25 score for the query (path tokens count as part of each document)."""
    bags = {path: Counter(tokens(path) + tokens(text)) for path, text in docs.items()}
    n = len(bags) or 1
    avg = sum(sum(c.values()) for c in bags.values()) / n or 1.0
    df = Counter(t for c in bags.values() for t in c)
    q = Counter(tokens(query))
    scores = []
    for path, bag in bags.items():
        length, s = sum(bag.values()), 0.0
        for term in q:
            if term in bag:
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                s += idf * bag[term] * (k1 + 1) / (bag[term] + k1 * (1 - b + b * length / avg))
        scores.append((path, s))
    return sorted(scores, key=lambda x: (-x[1], x[0]))


def parse_edits(text: str) -> list[tuple[str, str, str]]:
    return [(m["path"].strip(), m["search"], m["replace"]) for m in EDIT.finditer(text)]


def edits_to_diff(edits: list[tuple[str, str, str]], read: Any) -> tuple[str | None, int]:
    """Apply SEARCH/REPLACE edits to the files' texts; a unified diff of every changed file, and how
    many edits applied (an edit whose SEARCH text is not in the file is skipped)."""
    new: dict[str, str] = {}
    applied = 0
    for path, search, replace in edits:
        old = new.get(path, read(path))
        if old is None or not search.strip() or search not in old:
            continue
        new[path] = old.replace(search, replace, 1)
        applied += 1
    parts = []
    for path, text in sorted(new.items()):
        before = read(path)
        if text != before:
            parts.append("".join(difflib.unified_diff(before.splitlines(True), text.splitlines(True),
                                                      f"a/{path}", f"b/{path}")))
    body = "".join(p if p.endswith("\n") else p + "\n" for p in parts)
    return (f"{body}" if body else None), applied


class Agentless(Generator):
    name = "agentless"
    iid = True

    def __init__(self, role: str = "policy", files: int = 3, max_file_chars: int = 12000,
                 include_tests: bool = False, template: str = PROMPT) -> None:
        for field in ("{issue}", "{files}"):
            if field not in template:
                raise ValueError(f"agentless template is missing {field}")
        self.role, self.files, self.max_file_chars = role, files, max_file_chars
        self.include_tests, self.template = include_tests, template

    @staticmethod
    def trees() -> Any:
        from tts.verifiers.swebench import shared_trees

        return shared_trees()

    def localise(self, problem: Problem) -> dict[str, str]:
        """The top files for the issue, path -> text."""
        root = self.trees().tree(problem)
        docs = {}
        for path in sorted(root.rglob("*.py")):
            rel = str(path.relative_to(root))
            if not self.include_tests and re.search(r"(^|/)(tests?|testing)(/|_)|test_", rel):
                continue
            docs[rel] = path.read_text(errors="replace")
        ranked = [p for p, s in bm25_rank(problem.problem, docs) if s > 0][: self.files]
        return {p: docs[p] for p in ranked}

    async def sample(self, problem: Problem, ctx: StrategyContext, n: int) -> list[Candidate]:
        files = await asyncio.to_thread(self.localise, problem)
        shown = "\n\n".join(f"--- {p}\n{t[: self.max_file_chars]}" for p, t in files.items())
        role = ctx.role(self.role)
        ask = self.template.format(repo=problem.meta.get("repo", ""), issue=problem.problem, files=shown)
        gen = await role.generate(role.render([{"role": "user", "content": ask}]), role.sampling(n=n))
        trees = self.trees()
        out = ctx.candidates(gen, self.role)  # priced per sample; the answer is the diff of its edits
        for cand in out:
            edits = parse_edits(cand.text)
            diff, applied = edits_to_diff(edits, lambda p: trees.file(problem, p))
            cand.answer, cand.meta = diff, {"files": list(files), "edits": len(edits), "applied": applied}
        return out
