"""Where a model's text states an answer: each source is one small function that returns the spans
it finds (position, raw value, source, whether an anchor such as a box or "the answer is" marks it).
`tts.verifiers.math_extract` resolves them by position; nothing here decides which one is final."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

ANCHORED, LOOSE, FALLBACK = 2, 1, 0  # how strongly a span claims to be the final answer


@dataclass(frozen=True)
class Span:
    """One stated answer: `start`/`end` in the scanned text, the raw `value`, its `source`."""

    start: int
    end: int
    value: str
    source: str
    strength: int


_PLACEHOLDER = re.compile(r"^\s*(?:|_+|\.\.\.|\\ldots|\?+|answer|your answer|final answer|ans|\\text\{\s*\})\s*$",
                          re.IGNORECASE)


def is_placeholder(value: str) -> bool:
    """Empty boxes and fields that only echo a format instruction (`\\boxed{}`, `"___"`)."""
    return bool(_PLACEHOLDER.match(value.replace("$", "")))


def balanced(text: str, i: int) -> int | None:
    """Index just past the brace group opening at `text[i] == "{"`, or None if it never closes."""
    depth = 0
    for j in range(i, len(text)):
        ch = text[j]
        if ch == "\\" and j + 1 < len(text) and text[j + 1] in "{}":
            continue
        if ch == "{" and (j == 0 or text[j - 1] != "\\"):
            depth += 1
        elif ch == "}" and (j == 0 or text[j - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return j + 1
    return None


_BOX = re.compile(r"\\(?:boxed|fbox)\s*")


def boxes(text: str) -> list[Span]:
    """Every closed `\\boxed{...}` / `\\fbox{...}` (and `\\boxed 5`) with content that is not a placeholder."""
    out = []
    for m in _BOX.finditer(text):
        i = m.end()
        if i < len(text) and text[i] == "{":
            end = balanced(text, i)
            if end is None:
                continue
            value = text[i + 1:end - 1]
        else:
            word = re.match(r"[^\s$.,]+", text[i:])
            if not word:
                continue
            value, end = word.group(0), i + word.end()
        if not is_placeholder(value):
            out.append(Span(m.start(), end, value, "boxed", ANCHORED))
    return out


def unclosed_box(text: str) -> bool:
    """The text ends inside a `\\boxed{` that never closes (generation was cut off there)."""
    start = text.rfind("\\boxed")
    if start < 0:
        return False
    i = start + len("\\boxed")
    while i < len(text) and text[i] == " ":
        i += 1
    return i < len(text) and text[i] == "{" and balanced(text, i) is None


# "final answer is", "the answer is", "Answer:", "correct option is", "# Answer" (PRM800K), "####" (GSM8K)
_PHRASE = re.compile(
    r"(?:\bfinal\s+answer|\banswer|\bcorrect\s+(?:option|choice)|\bright\s+answer)\s*(?:\*\*)?\s*"
    r"(?:is|:|=|would\s+be|will\s+be)\s*(?:\*\*)?\s*:?\s*"
    r"|^\s*#+\s*(?:final\s+)?answer\s*:?\s*\n+"
    r"|^\s*####\s*",
    re.IGNORECASE | re.MULTILINE)
# A value runs to the end of its sentence: a newline, ". " or "." at the end, or Minerva's "I hope".
_VALUE_END = re.compile(r"\n|\.(?=\s|$|\*)|\s+I hope|;\s|\s+(?:but|because|since|which|as)\s", re.IGNORECASE)


def _sentence_value(text: str, start: int) -> tuple[str, int]:
    """The value after an answer phrase: dollar math and boxes are kept whole, then up to the sentence end."""
    i = start
    limit = min(len(text), start + 300)
    while i < limit:
        if text.startswith("$", i):
            close = text.find("$$" if text.startswith("$$", i) else "$", i + (2 if text.startswith("$$", i) else 1))
            i = (close + (2 if text.startswith("$$", i) else 1)) if close > 0 else limit
            continue
        if text.startswith("\\boxed{", i) or text.startswith("\\[", i):
            close = balanced(text, i + 6) if text.startswith("\\boxed{", i) else text.find("\\]", i)
            i = (close if text.startswith("\\boxed{", i) else close + 2) if close and close > 0 else limit
            continue
        m = _VALUE_END.match(text, i)
        if m and not re.match(r"\.\d", text[i:i + 2]):
            break
        i += 1
    return text[start:i], i


def phrases(text: str) -> list[Span]:
    """Values stated after "the answer is" / "Final Answer:" / "# Answer" / "####" sentences."""
    out = []
    for m in _PHRASE.finditer(text):
        value, end = _sentence_value(text, m.end())
        value = value.strip().strip("*").strip()
        if value and not is_placeholder(value) and not value.lower().startswith(("in ", "as ", "to ", "should")):
            out.append(Span(m.start(), end, value, "answer_is", ANCHORED))
    return out


_JSON = re.compile(r"\"(?:final_)?answer\"\s*:\s*(\"(?:[^\"\\\n]|\\.){0,300}\"|-?[\d.]+)")


def json_fields(text: str) -> list[Span]:
    """`"answer": "..."` fields of JSON the model wrote (placeholders like `"___"` are ignored)."""
    out = []
    for m in _JSON.finditer(text):
        value = m.group(1).strip('"').replace('\\"', '"').replace("\\\\", "\\")
        if not is_placeholder(value):
            out.append(Span(m.start(), m.end(), value, "json", ANCHORED))
    return out


_BOLD = re.compile(r"\*\*([^*\n]{1,80})\*\*")


def bold(text: str) -> list[Span]:
    """Short bold phrases that hold a number or math (`**42**`), not bold headings (`**Step 2:**`)."""
    out = []
    for m in _BOLD.finditer(text):
        value = m.group(1).strip()
        if re.search(r"\d|\\|\$", value) and not value.endswith(":") and not re.match(r"(?i)step\b", value):
            value = re.sub(r"(?i)^(?:final\s+)?answer\s*[:=]?\s*", "", value)
            out.append(Span(m.start(), m.end(), value, "bold", ANCHORED))
    return out


_OPTION = re.compile(r"(?:\b(?:option|choice)\s+|^\s*|\(\s*)\(?([A-E])\)(?=[\s.,]|$)", re.MULTILINE)


def options(text: str) -> list[Span]:
    """Option letters named in the text: `(C)`, `option C)`, a line starting `C)`."""
    return [Span(m.start(), m.end(), f"({m.group(1)})", "option", LOOSE) for m in _OPTION.finditer(text)]


@lru_cache(maxsize=1)
def _math_verify_patterns() -> list[tuple[re.Pattern[str], int]]:
    """math-verify's own extraction patterns: its LaTeX ones (without the greedy to-the-end
    `\\boxed{.+}`) and its anchored plain-number/expression ones ("answer: ... 9")."""
    from math_verify.parser import ExprExtractionConfig, LatexExtractionConfig, lazy_expr_regex, lazy_latex_regex

    latex = [(p, prio) for p, prio in lazy_latex_regex(LatexExtractionConfig()) if "latexBoxed>" not in p.pattern]
    expr = [(p, prio) for p, prio in lazy_expr_regex(ExprExtractionConfig()) if prio < 300]
    return latex + expr


def _latex_groups(m: re.Match[str]) -> str:
    groups = m.groupdict()
    parts = [v for k, v in groups.items() if v and "latex" in k]
    if not parts:  # an expression pattern: integer + decimal, or the expression
        number = next((v for k, v in groups.items() if k.startswith("integer") and v), "") + \
            next((v for k, v in groups.items() if k.startswith("decimal") and v), "")
        parts = [number or (groups.get("expr") or "").strip()]
    percent = any(v for k, v in groups.items() if v and k.endswith("percent"))
    return ", ".join(p.strip() for p in parts if p) + ("\\%" if percent and len(parts) == 1 else "")


def math_verify_latex(text: str) -> list[Span]:
    """LaTeX spans found by math-verify's extraction patterns: anchored when its pattern has an answer
    anchor ("final answer is", "answer:"), loose for plain `$...$` / `\\[...\\]` math and for math
    merely near the word "answer"."""
    out = []
    for pattern, priority in _math_verify_patterns():
        strength = LOOSE if priority >= 200 else ANCHORED  # 200: "answer" anywhere within 50 characters
        for m in pattern.finditer(text):
            value = _latex_groups(m)
            if value and not is_placeholder(value):
                out.append(Span(m.start(), m.end(), value, "math_verify", strength))
    return out


NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|(?<![\w.])-?\d+(?:\.\d+)?(?:/\d+)?")


def last_number(text: str) -> list[Span]:
    """The last number in the text (the resolver uses it only when nothing else states an answer)."""
    found = list(NUMBER.finditer(text))
    return [Span(found[-1].start(), found[-1].end(), found[-1].group(0), "last_number", FALLBACK)] if found else []


SOURCES: dict[str, Callable[[str], list[Span]]] = {
    "boxed": boxes, "answer_is": phrases, "json": json_fields, "bold": bold, "option": options,
    "math_verify": math_verify_latex, "last_number": last_number,
}
