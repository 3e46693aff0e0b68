"""One ATTS sample's text as both models see it, and the step scorer.

A transcript keeps the draft's and the target's token ids side by side (prompt + steps so far).
When the two models share a vocabulary a step's ids are appended to both unchanged; otherwise the
step's text is encoded for the other model (its tokens may split differently at the step's
boundary — documented, and the same pipeline is used for the bank and for test steps)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Step:
    """One turn's output: who wrote it, its loss under the target, its p-value and the decision."""

    turn: int
    author: str  # "draft" | "target"
    text: str
    tokens: int
    loss: float | None = None
    p: float | None = None
    rejected: bool | None = None
    dropped: bool = False  # replaced by the target's step (on_reject: replace)
    start: float = 0.0  # seconds since the problem's samples started
    end: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["loss"] is not None and not math.isfinite(out["loss"]):
            out["loss"] = None  # JSON has no inf; a None loss with rejected=True means "unscorable"
        return out


def same_vocab(a: Any, b: Any) -> bool:
    """Whether two tokenizers map text to the same ids (then ids can be shared, never re-encoded)."""
    if a is b:
        return True
    try:
        return len(a) == len(b) and a.get_vocab() == b.get_vocab()
    except (AttributeError, TypeError):
        return False


def eos_ids(tokenizer: Any) -> frozenset[int]:
    eos = getattr(tokenizer, "eos_token_id", None)
    return frozenset(eos if isinstance(eos, list) else [eos] if eos is not None else [])


def strip_eos(ids: list[int], eos: frozenset[int]) -> tuple[list[int], bool]:
    """A step's ids without a trailing end-of-text token, and whether it had one."""
    if ids and ids[-1] in eos:
        return list(ids[:-1]), True
    return list(ids), False


@dataclass
class Transcript:
    """Prompt + steps for the draft (`ids["draft"]`) and the target (`ids["target"]`)."""

    ids: dict[str, list[int]]
    encoders: dict[str, Any]  # role -> callable(text) -> ids, used when vocabularies differ
    shared: bool
    steps: list[Step] = field(default_factory=list)
    prompt_len: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.prompt_len = {k: len(v) for k, v in self.ids.items()}

    def append(self, author: str, step_ids: list[int], text: str) -> dict[str, list[int]]:
        """Add a step written by `author`; returns the ids it added for each model."""
        added = {}
        for who in self.ids:
            added[who] = list(step_ids) if who == author or self.shared else self.encoders[who](text)
            self.ids[who] = self.ids[who] + added[who]
        return added

    def drop_last(self, added: dict[str, list[int]]) -> None:
        """Undo the last `append` (the replace variant discards a rejected step)."""
        for who, ids in added.items():
            if ids:
                self.ids[who] = self.ids[who][: -len(ids)]

    def text(self) -> str:
        return "".join(s.text for s in self.steps if not s.dropped)

    def completion_ids(self, who: str) -> list[int]:
        return self.ids[who][self.prompt_len[who]:]


class StepScorer:
    """Nonconformity r of a step: the target's mean negative log-likelihood of the step's tokens
    given the prompt and the history (a prefill only; the log-perplexity, rank-equivalent to the
    reference code's PPL). An empty or unscorable step gets r = inf, i.e. always rejected."""

    def __init__(self, target: Any) -> None:
        self.target = target  # a BoundRole: calls are budgeted and ledgered under the target role

    async def score(self, prefix_ids: list[int], step_ids: list[int], call: str = "") -> float:
        """`call` names the ledger entry (a BoundRole target); a bare backend takes no name."""
        if not step_ids:
            return math.inf
        named = {"call": call} if call else {}
        logprobs = await self.target.score(prefix_ids, step_ids, **named)
        finite = [x for x in logprobs if x is not None and math.isfinite(x)]
        if len(finite) != len(step_ids):
            return math.inf
        return -sum(finite) / len(finite)
