"""Math final-answer extraction as a careful human grader reads it: every stated answer (boxes,
"the answer is" / "Final Answer:" / "# Answer" / "####" sentences, bold, JSON fields, option letters,
math-verify's LaTeX patterns, the last number) is a span in the text's tail, and position decides:
the latest anchored statement wins, so a later plain-text correction overrides a box. Loose math and
the last number count only where nothing is anchored, and never in text that was cut off or loops."""

from __future__ import annotations

import re

from tts.verifiers.answer_spans import ANCHORED, FALLBACK, LOOSE, NUMBER, SOURCES, Span, boxes, phrases, unclosed_box
from tts.verifiers.answer_text import (bare_answer, clean_value, concludes, concluding_span, cut_off, own_turn,
                                   repetitive, retracted)
from tts.verifiers.base import Extractor
from tts.verifiers.latex import canonical
from tts.verifiers.math_normalize import clean, unicode_minus

WINDOW = 4000  # answers sit at the end; scanning only the tail keeps 100 kB inputs cheap
DEFAULT_SOURCES = ["boxed", "answer_is", "json", "bold", "option", "math_verify", "last_number"]
_RANK = {"boxed": 5, "answer_is": 4, "json": 4, "bold": 3, "math_verify": 2, "option": 1, "last_number": 0}
_SENTENCE_BREAK = re.compile(r"\.\s|\n")


def _latest(spans: list[Span]) -> Span:
    """The span that starts last; at one position a box beats a phrase beats bold beats plain math."""
    return max(spans, key=lambda s: (s.start, _RANK[s.source], -s.end))


def _joined_boxes(text: str, spans: list[Span], final: Span) -> str:
    """Boxes in the final box's sentence, joined ("$x=\\boxed{2}$ and $x=\\boxed{5}$" -> "2, 5")."""
    group = [final]
    earlier = sorted((s for s in spans if s.source == "boxed" and s.end <= final.start), key=lambda s: -s.start)
    for s in earlier:
        gap = text[s.end:group[0].start]
        if len(gap) > 80 or _SENTENCE_BREAK.search(gap):
            break
        group.insert(0, s)
    return ", ".join(clean_value(s.value) for s in group)


def _inside_phrase(s: Span, phrases: list[Span]) -> bool:
    """A non-box span within an answer sentence: the sentence is read whole instead."""
    return s.source not in ("answer_is", "boxed") and any(p.start <= s.start and s.end <= p.end for p in phrases)


ENUMERATION = 4  # this many different stated answers is a loop counting upwards, not an answer


def _enumerating(phrases: list[Span]) -> bool:
    """"#### 7 ... #### 8 ... #### 9": a degenerate list of final answers states none of them."""
    return len({clean_value(p.value) for p in phrases}) >= ENUMERATION


def _anchored_answer(text: str, spans: list[Span]) -> str | None:
    phrases = [s for s in spans if s.source == "answer_is"]
    if _enumerating(phrases):
        return None
    final = _latest([s for s in spans if s.strength == ANCHORED and not _inside_phrase(s, phrases)])
    if retracted(text[final.end:]):
        return None
    if final.source == "boxed":
        return _joined_boxes(text, spans, final)
    return clean_value(final.value)


def _loose_answer(text: str, spans: list[Span]) -> str | None:
    """Plain math or an option letter in the concluding sentence (closing remarks such as "Right."
    skipped) or closing the text, or the last number of a concluding sentence."""
    if cut_off(text):
        return None
    loose = [s for s in spans if s.strength == LOOSE]
    start, stop = concluding_span(text)
    sentence = text[start:stop]
    pool = [s for s in loose if start <= s.start < stop or not text[s.end:].strip(" .,;:!\n")]
    if concludes(sentence):
        numbers = [Span(start + m.start(), start + m.end(), m.group(0), "last_number", FALLBACK)
                   for m in NUMBER.finditer(sentence)]
        pool += [n for n in numbers if not any(o.start <= n.start < o.end for o in loose)][-1:]
    return clean_value(_latest(pool).value) if pool else None


class MathAnswer(Extractor):
    """The final answer of a math solution, in canonical form (see the module docstring).

    `sources` names the span finders to use (default: all); `order` is its older spelling, kept so
    recipes that list `[boxed, answer_is, last_number]` still load (position, not list order, decides)."""

    name = "math"

    def __init__(self, sources: list[str] | None = None, order: list[str] | None = None,
                 window: int = WINDOW) -> None:
        chosen = list(sources or order or DEFAULT_SOURCES)
        unknown = [m for m in chosen if m not in SOURCES]
        if unknown:
            raise ValueError(f"unknown extraction method '{unknown[0]}' (methods: {', '.join(SOURCES)})")
        self.sources, self.window = chosen, window

    def spans(self, text: str) -> list[Span]:
        """Every stated answer the enabled sources find in `text` (already cut to the tail)."""
        return [s for name in self.sources for s in SOURCES[name](text)]

    def final(self, text: str) -> str | None:
        """The final answer as written (before canonical form), or None when the text gives none."""
        tail = unicode_minus(own_turn(text)[-self.window:])
        if unclosed_box(tail):
            return None
        spans = self.spans(tail)
        if any(s.strength == ANCHORED for s in spans):
            return _anchored_answer(tail, spans)
        if repetitive(tail):
            return None
        loose = _loose_answer(tail, spans)
        if loose is None and bare_answer(tail):  # the whole output is the answer ("-5", "28 percent")
            return clean_value(tail.strip())
        return loose

    def extract(self, text: str) -> str | None:
        found = self.final(text)
        return canonical(clean(found)) if found is not None else None


class Boxed(Extractor):
    """The content of the last closed `\\boxed{...}` (with boxes of the same sentence joined)."""

    name = "boxed"

    def extract(self, text: str) -> str | None:
        tail = text[-WINDOW:]
        found = boxes(tail)
        return canonical(_joined_boxes(tail, found, found[-1])) if found else None


class AnswerIs(Extractor):
    """The value after the last "The answer is" / "Final answer:" / "# Answer" / "####"."""

    name = "answer_is"

    def extract(self, text: str) -> str | None:
        found = phrases(text[-WINDOW:])
        return canonical(clean_value(found[-1].value)) if found else None
