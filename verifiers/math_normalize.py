"""String rules math-verify lacks, applied to an answer and a reference before comparing them:
unicode minus, `\\color`/`\\text` wrappers, delimiter sizing, number words, e-notation and
`a \\times 10^{k}`, repeating decimals, mixed numbers, percent marks, option letters and decimal
commas. Each rule is one small function."""

from __future__ import annotations

import re
from fractions import Fraction

from tts.verifiers.latex import _rational, canonical
from tts.verifiers.number_words import leading_number_words, words_to_number

_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2012": "-", "\u2014": "-", "\ufe63": "-", "\uff0d": "-"})


def unicode_minus(s: str) -> str:
    """Unicode minus signs and dashes become '-'."""
    return s.translate(_MINUS)


def unwrap_color(s: str) -> str:
    r"""`\color{red}{42}` / `\textcolor{red}{42}` / `{\color{red} 42}` -> `42`."""
    s = re.sub(r"\\textcolor\{[^{}]*\}\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\\color\{[^{}]*\}\{([^{}]*)\}", r"\1", s)
    return re.sub(r"\\color\{[^{}]*\}\s*", "", s)


_WRAPPER = re.compile(r"^\\(?:text|textbf|mathbf|mathrm|textit|mbox|bf|boldsymbol)\s*\{(.*)\}$", re.DOTALL)
_ONE_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")


def unwrap_text(s: str) -> str:
    r"""`\text{42 apples}` -> `42`, `\text{She needs 14 more}` -> `14`, `\text{seven}` -> `7`,
    `\textbf{12}` -> `12`; a wrapper around words alone keeps the words (`\text{Monday}` -> `Monday`)."""
    m = _WRAPPER.match(s.strip())
    if not m:
        return s
    inner = m.group(1).strip()
    numbers = _ONE_NUMBER.findall(inner)
    if len(numbers) == 1 and re.search(r"[A-Za-z]{2,}", inner) and not re.search(r"[\\^_=]", inner):
        return numbers[0]
    spelled = words_to_number(inner)
    if spelled is None:
        lead = leading_number_words(inner)
        spelled = lead[0] if lead and re.match(r"\s+[a-z]", inner[lead[1]:]) else None
    return str(spelled) if spelled is not None else inner


def number_words(s: str) -> str:
    """`three` -> `3`, `twenty-one` -> `21` when the whole answer is number words."""
    value = words_to_number(s)
    return str(value) if value is not None else s


_E_NOTATION = re.compile(r"^(-?\d+(?:\.\d+)?)\s*(?:[eE]\s*([+-]?\d+)|(?:\\times|\\cdot|\*|x|×)\s*10\s*\^\s*\{?\s*([+-]?\d+)\s*\}?)$")


def scientific(s: str) -> str:
    """`1e3`, `3.0E4`, `1.5 \\times 10^{3}`, `2.5\\cdot 10^{-2}` -> the exact decimal."""
    m = _E_NOTATION.match(s.strip())
    if not m:
        return s
    exponent = int(m.group(2) or m.group(3))
    if abs(exponent) > 50:
        return s
    value = Fraction(m.group(1)) * Fraction(10) ** exponent
    return str(value.numerator) if value.denominator == 1 else str(value)


_REPEATING = re.compile(r"^(-?)(\d*)\.(\d*)\\overline\{(\d+)\}$|^(-?)(\d*)\.(\d*)\\overline(\d)$")


def repeating_decimal(s: str) -> str:
    r"""`0.\overline{3}` -> `1/3`, `0.1\overline{6}` -> `1/6` (the exact fraction)."""
    m = _REPEATING.match(s.replace(" ", ""))
    if not m:
        return s
    sign, whole, fixed, rep = (m.group(1), m.group(2), m.group(3), m.group(4)) if m.group(4) else \
        (m.group(5), m.group(6), m.group(7), m.group(8))
    base = Fraction(int(whole or "0")) + (Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0)
    value = base + Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
    value = -value if sign else value
    return f"{value.numerator}/{value.denominator}"


_PERCENT = re.compile(r"\s*(?:\\%|%|\\text\{\s*\\?%\s*\}|(?:per\s?cent(?:age)?|pct)|\\text\{\s*percent\s*\})\s*$",
                      re.IGNORECASE)


def split_percent(s: str) -> tuple[str, bool]:
    """(`25`, True) for `25\\%`, `25%`, `25 percent`; (s, False) otherwise."""
    m = _PERCENT.search(s)
    return (s[:m.start()].strip(), True) if m else (s, False)


_LETTER = re.compile(r"^\s*(?:\\text(?:bf)?\s*\{\s*)?\(?\s*([A-E])\s*\)?\s*\}?\s*(?:\\[ ,;:!]|~|\s)*(.*)$", re.DOTALL)


def option_letter(s: str) -> tuple[str, str] | None:
    r"""(`B`, `24`) for `\textbf{(B)}\ 24`, (`C`, ``) for `(C)`, `C`, `\text{(C)}`, (`C`, `12`) for `C) 12`."""
    m = _LETTER.match(s)
    if not m:
        return None
    rest = m.group(2).strip()
    bare = re.fullmatch(r"\s*\(?\s*[A-E]\s*\)?\s*", s) or re.fullmatch(r"\\text(?:bf)?\{\s*\(?[A-E]\)?\s*\}", s.strip())
    if bare or re.match(r"^\s*(?:\\text(?:bf)?\s*\{\s*)?\(\s*[A-E]\s*\)", s) or re.match(r"^\s*[A-E]\)", s):
        return m.group(1), rest
    return None


_SIZING = re.compile(r"\\(?:[bB]igg?[lrm]?|left|right)(?![a-zA-Z])\s*")


def drop_sizing(s: str) -> str:
    r"""`igl(kigr)` -> `(k)`: delimiter sizing commands carry no meaning (math-verify misreads them)."""
    return _SIZING.sub("", s)


_MIXED = re.compile(r"^([+-]?)(\d{1,3}(?: \d{3})+|\d+)\s+(\d+)/(\d+)$")
_SPACED = re.compile(r"^-?\d{1,3}(?: \d{3})+(?:\.\d+)?$")


def mixed_number(s: str) -> str:
    """`4 4/9` -> `40/9`, `-11 5/6` -> `-71/6`, `1 000 4/9` -> `9004/9`; `1 000` -> `1000`;
    a percent mark stays (`4 4/9%` -> `40/9\\%`)."""
    t, percent = split_percent(s.strip())
    if percent:
        number = mixed_number(t)
        return f"{number}\\%" if number != t else s
    if _SPACED.match(t):
        return t.replace(" ", "")
    m = _MIXED.match(t)
    if not m or int(m.group(4)) == 0:
        return s
    value = int(m.group(2).replace(" ", "")) + Fraction(int(m.group(3)), int(m.group(4)))
    value = -value if m.group(1) == "-" else value
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


_COLUMN = re.compile(r"^\\begin\{[pbv]matrix\}(.*)\\end\{[pbv]matrix\}$", re.DOTALL)


def column_vector(s: str) -> str:
    r"""A one-column matrix is the tuple of its entries: `egin{pmatrix} 1 \ 2 \end{pmatrix}` -> `(1, 2)`."""
    m = _COLUMN.match(s.strip())
    if not m or "&" in m.group(1):
        return s
    rows = [r.strip() for r in re.split(r"\\\\", m.group(1)) if r.strip()]
    return f"({', '.join(rows)})" if len(rows) > 1 else s


def clean(s: str) -> str:
    """All string rules in order; the result is still LaTeX math-verify can parse."""
    s = unicode_minus(s.strip())
    s = drop_sizing(unwrap_color(s))
    s = re.sub(r"\{,\}", ",", s)
    s = unwrap_text(s)
    s = number_words(s)
    s = scientific(s)
    s = repeating_decimal(s)
    s = mixed_number(s)
    s = column_vector(s)
    return re.sub(r"(?<![.,])[.,;]$", "", s.strip()).strip()  # a full stop, not the "..." of a series


def as_number(s: str) -> Fraction | None:
    """The exact value of a plain number answer (`1,000`, `\\frac{3}{4}`, `-0.50`, `2/3`), else None."""
    c = canonical(s)
    if c is None:
        return None
    return _rational(c)


_DECIMAL_COMMA = re.compile(r"^(-?\d+),(\d{1,2})$|^(-?0),(\d+)$")


def decimal_comma(s: str) -> str | None:
    """`2,74` -> `2.74`, `0,111` -> `0.111` (a comma before one or two digits, or after a zero), else None."""
    m = _DECIMAL_COMMA.match(s.strip())
    if not m:
        return None
    whole, frac = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
    return f"{whole}.{frac}"
