"""The backend contract: async generation on token-id prompts, streaming with abort, prefill-only
scoring of a continuation span, capabilities, the model's shape and its tokenizer."""

from __future__ import annotations

import abc
import threading
from collections.abc import AsyncIterator
from typing import Any

from tts.cost.shape import ModelShape
from tts.types import Capabilities, CapabilityError, Generation, RequestState, Sampling, StreamDelta


# transformers' loading (lazy imports, meta-device initialisation) is not thread-safe, so backends
# that load in worker threads load one at a time, even when a recipe's roles start together.
# Re-entrant: a load may resolve a model that must first be converted (tts.backends.packaged).
LOAD_LOCK = threading.RLock()


class BackendError(RuntimeError):
    """A backend could not load its model or serve a request."""


def started(value: Any, backend: str) -> Any:
    """`value` if the backend has loaded it, else one clear error (not an AttributeError on None)."""
    if value is None:
        raise BackendError(f"{backend} backend: not started yet (await backend.start())")
    return value


def brief(exc: BaseException, lines: int = 2) -> str:
    """An exception as one line: its first `lines` non-empty lines joined (pydantic puts the detail
    on the second line), so a user sees what failed without a traceback."""
    text = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return " | ".join(text[:lines]) or type(exc).__name__


class Backend(abc.ABC):
    """One model behind an engine. Concurrent calls from many problems are batched by the backend."""

    name: str = "backend"

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    @property
    @abc.abstractmethod
    def shape(self) -> ModelShape: ...

    @property
    @abc.abstractmethod
    def tokenizer(self) -> Any: ...

    async def start(self) -> None:
        """Load the model (idempotent). Called once before the first request."""

    async def close(self) -> None:
        """Release the engine and its processes or threads."""

    @abc.abstractmethod
    async def generate(self, prompt_ids: list[int], sampling: Sampling) -> Generation:
        """Sample `sampling.n` completions of `prompt_ids`; final output only."""

    @abc.abstractmethod
    def stream(self, prompt_ids: list[int], sampling: Sampling) -> AsyncIterator[StreamDelta]:
        """Yield deltas as tokens are produced; closing the iterator aborts the request."""

    @abc.abstractmethod
    async def score(self, prompt_ids: list[int], continuation_ids: list[int]) -> list[float]:
        """Log-probabilities of each continuation token given everything before it (prefill only)."""

    def stats(self) -> dict[str, Any]:
        """Counters for diagnostics and tests (forward passes, batch sizes, ...)."""
        return {}

    @property
    def eos_ids(self) -> frozenset[int]:
        """Token ids that end a sample (the model's generation config and its tokenizer)."""
        eos = self.tokenizer.eos_token_id
        return frozenset(() if eos is None else (eos,))

    # -- extensions a backend declares in `capabilities`; undeclared ones refuse in one line ----------
    def lease(self) -> Any:
        """`async with backend.lease() as model`: exclusive use of the in-process model (`lease`)."""
        raise CapabilityError(f"backend '{self.name}' lacks lease (exclusive use of an in-process model)")

    async def generate_with_state(self, prompt_ids: list[int], sampling: Sampling,
                                  state: RequestState | None) -> Generation:
        """`generate` under per-request model state (`request_state`; see `tts.types.RequestState`)."""
        raise CapabilityError(f"backend '{self.name}' lacks request_state (per-request model state)")

    async def classify(self, prompt_ids: list[int]) -> list[float] | list[list[float]]:
        """A classification head's raw outputs for `prompt_ids` (`classify`): one row for a sequence
        head, one row per token for a token head (no activation applied)."""
        raise CapabilityError(f"backend '{self.name}' lacks classify (a reward model's head)")

    async def add_lora(self, name: str, path: str) -> None:
        """Load a peft adapter under `name` for requests with `extra={"lora": name}` (`lora`)."""
        raise CapabilityError(f"backend '{self.name}' lacks lora (adapters loaded at run time)")

    async def remove_lora(self, name: str) -> None:
        raise CapabilityError(f"backend '{self.name}' lacks lora (adapters loaded at run time)")
