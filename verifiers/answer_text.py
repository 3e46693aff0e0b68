"""Turning a stated answer into an answer string, and reading the state of a model's text: did it
end cleanly, degenerate into repetition, or retract what it last stated? Each rule is one function."""

from __future__ import annotations

import re

from tts.verifiers.answer_spans import balanced
from tts.verifiers.number_words import leading_number_words

_HOPE = re.compile(r"\s*I hope it is correct\.?\s*$", re.IGNORECASE)
_LEAD_NUMBER = re.compile(r"^\\?\$?\s*(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)(?:\s*\\?%)?"
                          r"(?=[\s,]+[A-Za-z]|\s*$|\s*\\?%)")
_WORDS_AFTER = re.compile(r"^[\s,]*(?:[A-Za-z]{2,}|[a-z]\b)")


def full_stop(value: str) -> str:
    """Drop a sentence's final full stop (or comma), not the "..." of a series."""
    return re.sub(r"(?<![.,])[.,;]$", "", value.strip()).strip()


def last_box_content(value: str) -> str | None:
    """Content of the last closed `\\boxed{...}` inside a value, else None."""
    start = value.rfind("\\boxed{")
    if start < 0:
        return None
    end = balanced(value, start + len("\\boxed"))
    return value[start + len("\\boxed{"):end - 1] if end else None


_SEGMENT = re.compile(r"\$\$(.+?)\$\$|(?<!\\)\$(.+?)(?<!\\)\$|\\\[(.+?)\\\]", re.DOTALL)
_JOINERS = re.compile(r"^[\s,\"'“”]*(?:,|and|or)?[\s,\"'“”]*$")


def _dollar_math(value: str) -> str | None:
    """The math of a value: its last `$...$` / `\\[...\\]` segment, or all of them joined when
    they are only separated by "and" / "or" / commas (`$12$ and $13$` -> `12, 13`)."""
    found = list(_SEGMENT.finditer(value))
    if not found:
        return None
    segments = [next(g for g in m.groups() if g).strip() for m in found]
    gaps = [value[a.end():b.start()] for a, b in zip(found, found[1:])]
    if len(found) > 1 and all(_JOINERS.match(g) for g in gaps) and not value[:found[0].start()].strip(" \"'“”"):
        return ", ".join(segments)
    return segments[-1]


_SENTENCE_VERB = re.compile(r"\s(?:is|are|was|were|equals|becomes|would be|will be)\s+(?!not\b)", re.IGNORECASE)
_ANY_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")


def sentence_answer(value: str) -> str | None:
    """The answer inside a sentence: after its last "is" / "are" ("The volume of $V$ is 120" ->
    "120"), or its only number when it has no math ("Jane started 3 hours ago" -> "3")."""
    if len(re.findall(r"[A-Za-z]{2,}", re.sub(r"\\[A-Za-z]+|\$[^$]*\$", " ", value))) < 3:
        return None
    verbs = list(_SENTENCE_VERB.finditer(value))
    if verbs:
        rest = value[verbs[-1].end():].strip()
        return rest or None
    numbers = _ANY_NUMBER.findall(value)
    if len(numbers) == 1 and "$" not in value and "\\" not in value:
        return numbers[0]
    return None


def leading_number(value: str) -> str | None:
    """"12,000,023 people" -> "12,000,023", "2.5 meters" -> "2.5", "three trucks" -> "3"."""
    m = _LEAD_NUMBER.match(value)
    if m:
        return m.group(0).lstrip("\\$").strip()
    words = leading_number_words(value)
    if words and (words[1] == len(value.rstrip(". ")) or _WORDS_AFTER.match(value[words[1]:])):
        return str(words[0])
    return None


_RESULT = re.compile(r"=\s*(-?\d[\d,]*(?:\.\d+)?)\s*$")


def arithmetic_result(value: str) -> str | None:
    """"60 * 7 = 420" -> "420", "x+y = 8+9 = 17" -> "17": the result of a calculation (the step before
    the last "=" has no variables); equations ("2x + 4y = 6") stay whole."""
    m = _RESULT.search(value)
    if not m:
        return None
    step = value[:m.start()].rsplit("=", 1)[-1]
    if re.search(r"[a-zA-Z]", re.sub(r"\\(?:times|cdot|div|[dt]?frac|left|right)", "", step)):
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
    inner = sentence_answer(value)
    if inner is not None and inner != value:
        return clean_value(inner)
    math = _dollar_math(value)
    if math is not None:
        return arithmetic_result(math) or math
    result = arithmetic_result(value)
    if result is not None:
        return result
    number = leading_number(value)
    if number is not None:
        return number
    return full_stop(value)


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


_DANGLING = re.compile(r"(?:[=+\-*/^(,:]|\b(?:by|to|of|and|or|the|is|are|a|an|we|then|so|gives?|get|with|for|"
                       r"in|on|that|which|from|as|if))\s*$", re.IGNORECASE)
_ENDS_IN_WORD = re.compile(r"[A-Za-z]\s*$")


def cut_off(text: str) -> bool:
    """The text stops mid-sentence or mid-expression: a dangling operator or connective, or a long
    text that ends in a bare word (short answers such as `28 percent` end in words too)."""
    s = text.rstrip()
    return not s or bool(_DANGLING.search(s)) or (len(s) > 200 and bool(_ENDS_IN_WORD.search(s)))


_TURN_END = re.compile(r"<\|im_end\|>|<\|im_start\|>|<\|eot_id\|>|<\|end_of_text\|>|<\|endoftext\|>|</s>|"
                       r"<end_of_turn>|<\|user\|>|<\|assistant\|>")


def own_turn(text: str) -> str:
    """The model's own reply: text after a leaked end-of-turn marker is a new turn, not the answer;
    Minerva's closing "I hope it is correct." is not part of the answer's sentence."""
    m = _TURN_END.search(text)
    text = text[:m.start()] if m and m.start() > 0 else text
    return _HOPE.sub("", text)


def bare_answer(text: str) -> bool:
    """The whole output is just an answer (`-5`, `28 percent`, `4 4/9`, `1+1`, `seven`, `(B)`): short,
    one line, few words, and a number, math, number words or an option letter."""
    s = text.strip()
    if not (0 < len(s) <= 40 and "\n" not in s and len(re.findall(r"[A-Za-z]{3,}", s)) <= 2):
        return False
    return bool(re.search(r"[\d\\$]", s) or leading_number_words(s) or re.fullmatch(r"\(?[A-E]\)?\.?", s))


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


def _last_sentence(s: str) -> str:
    cut = max(s.rfind("\n"), *(s.rfind(p, 0, len(s) - 1) for p in (". ", "! ", "? ")))
    return s[cut + 1:] if cut >= 0 else s


_CONTENT = re.compile(r"\d|\$|\\\(|\\\[")


def concluding_span(text: str) -> tuple[int, int]:
    """(start, end) of the last sentence or line that states something: closing remarks without
    numbers or math ("That's our answer.", "Right.", "I agree.") are skipped, up to three of them."""
    s = text.rstrip()
    for _ in range(3):
        last = _last_sentence(s)
        if _CONTENT.search(last) or len(last.strip()) > 80 or len(last) >= len(s):
            break
        s = s[:len(s) - len(last)].rstrip()
    last = _last_sentence(s)
    return len(s) - len(last), len(s)


def concluding_sentence(text: str) -> str:
    """The text of `concluding_span`."""
    start, end = concluding_span(text)
    return text[start:end]


def concludes(sentence: str) -> bool:
    """The sentence reads as a conclusion ("so", "=", "is", "total", ...), not a restated question."""
    return bool(_CONCLUDES.search(sentence)) and "?" not in sentence
