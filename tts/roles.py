"""A role is a backend plus its tokenizer, chat settings and default sampling. It renders messages
to token ids once; methods that continue a text append ids and never re-tokenise a string."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from tts.backends.base import Backend
from tts.prompts import PromptSpec
from tts.types import PromptIds, Sampling


Encoder = Callable[[str, bool], list[int]]
# Strings on which a tokenizer's Rust core must agree with its Python wrapper before tts skips it.
PROBES = ("18+36-30;", "Hello, world!  What is 12 * 7?\n\nAnswer: 84.", " leading space\tand tab", "")


def encoder_for(tok: Any) -> Encoder:
    """`text, add_special_tokens -> ids`: the fast tokenizer's Rust core when it agrees with the
    wrapper on PROBES (the wrapper's batch path cost ~10x per short prompt, a controller-bound
    run's largest per-problem cost), else the wrapper itself."""
    def wrapper(text: str, special: bool) -> list[int]:
        return list(tok.encode(text, add_special_tokens=special))

    core = getattr(tok, "backend_tokenizer", None) if getattr(tok, "is_fast", False) else None
    if core is None:
        return wrapper

    def rust(text: str, special: bool) -> list[int]:
        return core.encode(text, add_special_tokens=special).ids

    specials = [t for t in (getattr(tok, "bos_token", None), getattr(tok, "eos_token", None)) if isinstance(t, str)]
    probes = (*PROBES, *(f"x{t} y" for t in specials))
    try:
        same = all(rust(t, sp) == wrapper(t, sp) for t in probes for sp in (True, False))
    except Exception:  # a tokenizer whose core cannot encode alone
        same = False
    return rust if same else wrapper


class Role:
    """A named use of a model: `policy`, `draft`, `target`, `judge`, ..."""

    def __init__(self, name: str, backend: Backend, sampling: Sampling | None = None,
                 chat: bool | None = None, prompt: PromptSpec | None = None) -> None:
        self.name, self.backend = name, backend
        self.sampling = sampling or Sampling()
        self.prompt = prompt or PromptSpec()
        self._chat = chat  # None: follow the prompt block
        self._encoder: tuple[Any, Encoder] | None = None  # (tokenizer, its encoder)

    def renamed(self, name: str) -> "Role":
        """The same model, sampling and prompt under another name (ledger entries go under it)."""
        role = Role(name, self.backend, self.sampling, self._chat, self.prompt)
        role._encoder = self._encoder
        return role

    @property
    def tokenizer(self) -> Any:
        return self.backend.tokenizer

    def _encode(self, text: str, special: bool) -> list[int]:
        tok = self.tokenizer
        if self._encoder is None or self._encoder[0] is not tok:
            self._encoder = (tok, encoder_for(tok))
        return self._encoder[1](text, special)

    @property
    def uses_chat(self) -> bool:
        chat = self.prompt.chat if self._chat is None else self._chat
        return bool(chat and getattr(self.tokenizer, "chat_template", None))

    def render(self, messages: list[dict[str, str]], assistant_prefix: str | None = None) -> PromptIds:
        """Apply the chat template once and return token ids (plus an optional assistant prefix) that
        remember the messages, for backends that take messages (`api: chat`)."""
        tok = self.tokenizer
        if self.uses_chat:
            text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            ids = self._encode(text + (assistant_prefix or ""), False)
        else:
            text = "\n\n".join(m["content"] for m in messages) + (assistant_prefix or "")
            ids = self._encode(text, True)
        return PromptIds(ids, [dict(m) for m in messages], assistant_prefix)

    def render_problem(self, problem: str, assistant_prefix: str | None = None) -> list[int]:
        """The recipe's prompt for one problem, rendered for this role's model."""
        if self.uses_chat:
            return self.render(self.prompt.messages(problem), assistant_prefix)
        text = self.prompt.plain_text(problem) + (assistant_prefix or "")
        return self._encode(text, True)

    def encode(self, text: str) -> list[int]:
        """Token ids of a text fragment to append to a prompt (no special tokens)."""
        return self._encode(text, False)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def chat_template_hash(self) -> str | None:
        template = getattr(self.tokenizer, "chat_template", None)
        if not template:
            return None
        return hashlib.sha256(str(template).encode()).hexdigest()[:16]
