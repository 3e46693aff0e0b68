"""Plain data types shared by every part of the toolkit: sampling settings, generations, problems,
candidates and outcomes. No heavy imports here: `import tts` must stay fast."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class PromptIds(list):
    """Token ids a role rendered from chat messages, remembering those messages (and an assistant
    prefix) so a chat-only API can be sent the messages themselves. List arithmetic (a prompt plus a
    continuation) gives a plain list: ids a strategy built no longer claim to be those messages."""

    def __init__(self, ids: list[int], messages: list[dict[str, str]], assistant_prefix: str | None = None) -> None:
        super().__init__(ids)
        self.messages, self.assistant_prefix = messages, assistant_prefix


@dataclass(frozen=True)
class Sampling:
    """Sampling settings for one backend call; `extra` passes engine-specific fields through."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 disables top-k
    max_tokens: int = 256
    min_tokens: int = 0
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    include_stop_str_in_output: bool = False
    logprobs: bool = True
    bad_words: tuple[str, ...] = ()
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"Sampling.n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"Sampling.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"Sampling.top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1 or self.min_tokens < 0 or self.min_tokens > self.max_tokens:
            raise ValueError(
                f"Sampling needs 0 <= min_tokens <= max_tokens and max_tokens >= 1, "
                f"got min_tokens={self.min_tokens}, max_tokens={self.max_tokens}"
            )
        # Accept lists from YAML/JSON but store tuples so the object stays hashable.
        for name in ("stop", "stop_token_ids", "bad_words"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(value))

    def replace(self, **changes: Any) -> "Sampling":
        """A copy with some fields changed (dataclasses.replace, re-validated)."""
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data.update(changes)
        return Sampling(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Completion:
    """One sampled continuation: ids, text, per-token log-probabilities and why it ended."""

    token_ids: list[int]
    text: str
    logprobs: list[float] | None = None
    finish_reason: str = "length"  # "stop" | "length" | "abort"
    seed: int | None = None


@dataclass
class Generation:
    """What a backend returns for one `generate` call (n completions sharing one prompt)."""

    completions: list[Completion]
    prompt_tokens: int
    cached_prompt_tokens: int = 0
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def completion_tokens(self) -> int:
        return sum(len(c.token_ids) for c in self.completions)


@dataclass
class StreamDelta:
    """Newly produced tokens of completion `index`; `finish_reason` is set on its last delta."""

    index: int
    token_ids: list[int]
    text: str
    logprobs: list[float] | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, so a method that needs more refuses in one line up front. Each flag
    is a promise a test checks: `generation` (`generate` at all: a classification head has none),
    `token_prompts` (generate from arbitrary token ids, continuations included), `streaming`,
    `scoring` (continuation log-probs), `lora` (`add_lora`/`remove_lora` at run time), `gradients`
    (the model passes gradients), `lease` (exclusive use of the in-process model for work that
    changes it per problem: tuning an initial state, encoding an adapter),
    `request_state` (`generate(..., state=RequestState)`: per-request model state applied to that
    request's forward passes only — router offsets refitted as it decodes, an RWKV initial state,
    functional LoRA tensors), `classify` (`classify(ids)`: a reward head's raw outputs, one row for a
    sequence head, one per token for a token head)."""

    generation: bool = True
    token_prompts: bool = True
    streaming: bool = True
    scoring: bool = True
    lora: bool = False
    gradients: bool = False
    lease: bool = False
    request_state: bool = False
    classify: bool = False

    def require(self, backend: str, **needed: bool) -> None:
        """Raise one clear error if any capability in `needed` is missing."""
        missing = [k for k, want in needed.items() if want and not getattr(self, k)]
        if missing:
            raise CapabilityError(f"backend '{backend}' lacks {', '.join(missing)}")


class CapabilityError(RuntimeError):
    """A method asked a backend for something it cannot do."""


class RequestState:
    """Per-request model state (capability `request_state`): a backend given one decodes that request
    alone, each row with the backend's own sampler, seeding, stop rules and detokenisation, and
    calls these hooks so a method changes the model for this request only. The default hooks are
    plain decoding; subclasses override what they need. Hooks run on the backend's worker thread
    with exclusive use of the model; gradients are off unless a hook turns them on.

    `shared_prefill`: rows start from one prefill of the prompt (copied per row); False when
    `begin_row` changes the model per row (then each row prefills after its own `begin_row`).
    `seconds`: time the hooks spent learning, which the backend reports apart from decoding."""

    shared_prefill: bool = True
    seconds: float = 0.0

    def begin_row(self, model: Any, prompt_ids: list[int], row: int) -> None:
        """Before row `row`'s prefill (when rows share one prefill: once, with row 0)."""

    def initial_cache(self, model: Any) -> Any:
        """The cache or recurrent state a prefill starts from (None: empty); also used when the
        cache is rebuilt."""
        return None

    def forward(self, model: Any, inputs: dict[str, Any]) -> Any:
        """One forward pass of this request (functional parameters go here)."""
        return model(**inputs)

    def after_token(self, model: Any, ids: list[int], row: int) -> bool:
        """After each sampled token (`ids`: prompt and output so far) of an unfinished row; True asks
        the backend to rebuild the cache from `ids` under the model as it now is."""
        return False

    def end_row(self, model: Any, row: int) -> None:
        """After row `row` finished or failed: undo what `begin_row` installed."""


@dataclass
class Problem:
    """One dataset item: a stable id, the text shown to the model, the reference and extras."""

    id: str
    problem: str
    answer: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Candidate:
    """One candidate solution of a problem, with everything needed to aggregate and evaluate it."""

    problem_id: str
    index: int
    role: str
    seed: int | None
    token_ids: list[int]
    text: str
    answer: str | None = None  # canonical form from the recipe's extractor
    scores: dict[str, float] = field(default_factory=dict)
    logprob_stats: dict[str, float] = field(default_factory=dict)
    logprobs: list[float] | None = None
    finish_reason: str = "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    eflops: float = 0.0
    iid: bool = True
    grade: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.problem_id}#{self.index}"


@dataclass
class Answer:
    """An aggregator's choice: the canonical answer, the text it came from and why."""

    answer: str | None
    text: str | None = None
    candidate_index: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a strategy returns for one problem: the final answer and the candidates behind it."""

    answer: Answer
    candidates: list[Candidate]
    info: dict[str, Any] = field(default_factory=dict)
