"""Turning a stated answer into an answer string, and reading the state of a model's text: did it
end cleanly, degenerate into repetition, or retract what it last stated? Each rule is one function."""

from __future__ import annotations

import re

from verifiers.answer_spans import balanced
from verifiers.number_words import leading_number_words

_HOPE = re.compile(r"\s*I hope it is correct\.?\s*$", re.IGNORECASE)
_LEAD_NUMBER = re.compile(r"^\\?\$?\s*(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)(?:\s*\\?%)?"
                          r"(?=[\s,]+[A-Za-z]|\s*$|\s*\\?%)")
_WORDS_AFTER = re.compile(r"^[\s,]*(?:[A-Za-z]{2,}|[a-z]\b)")


def last_box_content(value: str) -> str | None:
    """Content of the last closed `\\boxed{...}` inside a value, else None."""
    start = value.rfind("\\boxed{")
    if start < 0:
        return None
    end = balanced(value, start + len("\\boxed"))
    return value[start + len("\\boxed{"):end - 1] if end else None


def _dollar_math(value: str) -> str | None:
    """The last `$...$` (or `\\[...\\]`) segment when the value is math with words around it."""
    segments = re.findall(r"\$\$(.+?)\$\$|(?<!\\)\$(.+?)(?<!\\)\$|\\\[(.+?)\\\]", value, re.DOTALL)
    if not segments:
        return None
    last = next(s for s in segments[-1] if s)
    return last.strip()


def leading_number(value: str) -> str | None:
    """"12,000,023 people" -> "12,000,023", "2.5 meters" -> "2.5", "three trucks" -> "3"."""
    m = _LEAD_NUMBER.match(value)
    if m:
        return m.group(0).lstrip("\\$").strip()
    words = leading_number_words(value)
    if words and (words[1] == len(value.rstrip(". ")) or _WORDS_AFTER.match(value[words[1]:])):
        return str(words[0])
    return None


_ARITHMETIC = re.compile(r"^[\d\s.,+\-*/×÷()^\\a-z{}=]*=\s*(-?\d[\d,]*(?:\.\d+)?)\s*$")


def arithmetic_result(value: str) -> str | None:
    """"60 * 7 = 420" -> "420": the result of a calculation with no variables; equations stay whole."""
    m = _ARITHMETIC.match(value)
    lhs = re.sub(r"\\(?:times|cdot|div|[dt]?frac|left|right)", "", value.rsplit("=", 1)[0])
    if not m or re.search(r"[a-zA-Z]", lhs):
        return None
    return m.group(1)


def clean_value(value: str) -> str:
    """The answer inside a stated value: a box, else dollar math, else a leading number or the text."""
    value = _HOPE.sub("", value).strip().strip("*").strip().rstrip(",;:").strip()
    boxed = last_box_content(value)
    if boxed is not None:
        return boxed.strip()
    if value.startswith("\\(") and value.endswith("\\)"):
        value = value[2:-2]
    math = _dollar_math(value)
    if math is not None:
        return arithmetic_result(math) or math
    result = arithmetic_result(value)
    if result is not None:
        return result
    number = leading_number(value)
    if number is not None:
        return number
    return value.rstrip(".").strip()


def repetitive(text: str, window: int = 600, min_span: int = 240) -> bool:
    """The tail is one chunk (1-200 chars) repeated over at least `min_span` characters: a loop."""
    tail = text[-window:]
    if len(tail) < min_span:
        return False
    for period in range(1, 201):
        if len(tail) < 3 * period:
            break
        run = period
        while run < len(tail) and tail[-1 - run] == tail[-1 - run + period]:
            run += 1
        if run >= min_span and run >= 3 * period:
            return True
    return False


_CLEAN_END = re.compile(r"(?:[.!?)\]}$*]|\\\]|\\\)|\d)\s*$")
_DANGLING = re.compile(r"(?:[=+\-*/^(,]|\b(?:by|to|of|and|the|is|are|a|an|we|then|so|gives?|get))\s*$",
                       re.IGNORECASE)


def cut_off(text: str) -> bool:
    """The text stops mid-sentence or mid-expression (no terminal punctuation; a dangling operator)."""
    s = text.rstrip()
    return not s or bool(_DANGLING.search(s)) or not _CLEAN_END.search(s)


_RETRACT = re.compile(
    r"\b(?:that'?s|that is|this is|it'?s|is)\s+(?:wrong|incorrect|not (?:right|correct))\b"
    r"|\bmade an? (?:error|mistake)\b|\bcannot (?:determine|find|solve)\b|\bI was wrong\b",
    re.IGNORECASE)


def retracted(after: str) -> bool:
    """The text after a stated answer says it was wrong (and states nothing newer)."""
    return bool(_RETRACT.search(after))


_CONCLUDES = re.compile(
    r"=|\b(?:so|therefore|thus|hence|total|altogether|in all|result|makes?|gets?|equals?|is|are|was|were|"
    r"has|have|had|needs?|costs?|earns?|pays?|left|remain\w*|will|would)\b", re.IGNORECASE)


def concluding_sentence(text: str) -> str:
    """The last sentence or line of the text (where a plain-number answer must sit)."""
    s = text.rstrip()
    cut = max(s.rfind("\n"), *(s.rfind(p, 0, len(s) - 1) for p in (". ", "! ", "? ")))
    return s[cut + 1:] if cut >= 0 else s


def concludes(sentence: str) -> bool:
    """The sentence reads as a conclusion ("so", "=", "is", "total", ...), not a restated question."""
    return bool(_CONCLUDES.search(sentence)) and "?" not in sentence
