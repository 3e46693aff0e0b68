"""Is an answer mathematically equal to a reference? Runs inside a killable worker (tts.verifiers.pool;
the library never imports this module in-process, so sympy stays out of `import tts`):
plain numbers are compared exactly (rounded decimals differ, float artifacts do not), option letters
as letters, percentages by the labelling rules, then math-verify, then equations up to scaling.

Rules (docs/measurement.md, "What counts as correct"): `0.333` is not `1/3`, `17.999999999999996`
is `18`; `25%` is `25`, and `0.7` is `70%` only when the reference is a percentage."""

from __future__ import annotations

import re
from fractions import Fraction

# Imported when the worker loads this module, before it answers its ping: a fresh worker's first
# case must not spend its deadline importing sympy (the pool's deadline covers the call alone).
from latex2sympy2_extended import latex2sympy
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from sympy import nsimplify, simplify

from tts.verifiers.math_normalize import as_number, clean, decimal_comma, option_letter, split_percent

ARTIFACT_DIGITS = 12  # a decimal this long that misses a value by < 1e-9 relative is a float artifact


def _numbers_equal(a: Fraction, r: Fraction, a_text: str) -> bool:
    if a == r:
        return True
    digits = len(re.sub(r"\D", "", a_text))
    return digits >= ARTIFACT_DIGITS and abs(a - r) <= Fraction(1, 10**9) * max(1, abs(r))


def _wrap(s: str) -> str:
    return s if "\\boxed" in s else f"$\\boxed{{{s}}}$"


def math_verify_equal(answer: str, reference: str) -> bool:
    """math-verify's parse and verify (gold first), sets and relations comparable."""
    configs = [LatexExtractionConfig(), ExprExtractionConfig()]
    gold = parse(_wrap(reference), extraction_config=configs, parsing_timeout=1)
    pred = parse(_wrap(answer), extraction_config=configs, parsing_timeout=1)
    return bool(gold and pred and verify(gold, pred, timeout_seconds=1, allow_set_relation_comp=True))


_ASSIGNMENT = re.compile(r"^\s*[A-Za-z]\s*=\s*[^A-Za-z=]*$")


def equations_scaled(answer: str, reference: str) -> bool:
    """Two equations with variables that differ by a nonzero constant factor (`2x+4y=6` vs `x+2y=3`)."""
    if answer.count("=") != 1 or reference.count("=") != 1 or re.search(r"[<>]|\\[lg]e", answer + reference):
        return False
    if _ASSIGNMENT.match(reference) or _ASSIGNMENT.match(answer):  # "x = 5" is a value, not a curve: an
        return False                                              # equation that solves to it is no answer
    sides = [latex2sympy(part) for part in (*answer.split("="), *reference.split("="))]
    a, r = sides[0] - sides[1], sides[2] - sides[3]
    if not a.free_symbols or a.free_symbols != r.free_symbols or r == 0:
        return False
    ratio = simplify(a / r)
    return bool(ratio.is_number and ratio != 0 and nsimplify(ratio).is_finite)


def _letters(answer: str, reference: str) -> bool | None:
    """Multiple choice: decided by letters when the reference is an option letter, else None."""
    ref = option_letter(reference)
    if ref is None or ref[1]:
        return None
    ans = option_letter(answer)
    return ans is not None and ans[0] == ref[0]


def _number(s: str, other: str) -> Fraction | None:
    """`s` as an exact number; a decimal comma (`2,74`) counts only when the other side is a number."""
    value = as_number(s)
    if value is None and as_number(other) is not None:
        comma = decimal_comma(s)
        value = as_number(comma) if comma else None
    return value


_STATED = re.compile(r"^([^=<>]+)=\s*(-?\d[\d,]*(?:\.\d+)?|-?\\frac\{\d+\}\{\d+\})\s*$")


def stated_value(answer: str, reference: str) -> str:
    """`x+y = 17`, `(a_1)^9 = -1`, `f(3) = 5` against a number: the value stated for the quantity. An
    unsolved equation (`2x = 10`: one variable times a coefficient) is left whole."""
    m = _STATED.match(answer)
    if not m or as_number(reference) is None:
        return answer
    quantity = m.group(1).strip()
    letters = set(re.findall(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", quantity)))
    if not letters or (len(letters) == 1 and re.fullmatch(r"-?\d*\s*[a-zA-Z]", quantity)):
        return answer if letters else m.group(2)
    return m.group(2)


def _strip_option(answer: str) -> str:
    found = option_letter(answer)
    return found[1] if found and found[1] else answer


def _percent_forms(answer: str, reference: str, percent_question: bool) -> list[tuple[str, str, bool]]:
    """(answer, reference, exact-numbers-only) pairs to try under the percent rules."""
    a, a_pct = split_percent(answer)
    r, r_pct = split_percent(reference)
    forms = [(a, r, False)]
    if a_pct and not r_pct:  # "28%" is also the number 0.28
        value = as_number(a)
        if value is not None:
            forms.append((str(value / 100), r, True))
    if (r_pct or percent_question) and not a_pct:
        rate = as_number(r)
        if rate is not None:  # 0.7 for 70 per cent
            forms.append((a, str(rate / 100), True))
    return forms


def equivalent(answer: str, reference: str, percent_question: bool = False) -> bool:
    """The worker's entry point: True when `answer` states the same value as `reference`."""
    answer, reference = clean(answer), clean(reference)
    letters = _letters(answer, reference)
    if letters is not None:
        return letters
    answer = stated_value(_strip_option(answer), reference)
    for a, r, numbers_only in _percent_forms(answer, reference, percent_question):
        na, nr = _number(a, r), _number(r, a)
        if na is not None and nr is not None:
            if _numbers_equal(na, nr, a):
                return True
            continue
        if numbers_only:
            continue
        if a.strip().lower() == r.strip().lower() or math_verify_equal(a, r):
            return True
        try:
            if equations_scaled(a, r):
                return True
        except Exception:  # latex2sympy raises many types on text it cannot read
            pass
    return False


def math_verify_alone(output: str, reference: str) -> bool:
    """The baseline a sceptic would pick: math-verify's default parse of the whole output, no extractor."""
    gold = parse(_wrap(reference), parsing_timeout=1)
    pred = parse(output, parsing_timeout=1)
    return bool(gold and pred and verify(gold, pred, timeout_seconds=1))
