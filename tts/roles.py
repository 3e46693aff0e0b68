"""A role is a backend plus its tokenizer, chat settings and default sampling. It renders messages
to token ids once; methods that continue a text append ids and never re-tokenise a string."""

from __future__ import annotations

import hashlib
from typing import Any

from tts.backends.base import Backend
from tts.prompts import PromptSpec
from tts.types import PromptIds, Sampling


class Role:
    """A named use of a model: `policy`, `draft`, `target`, `judge`, ..."""

    def __init__(self, name: str, backend: Backend, sampling: Sampling | None = None,
                 chat: bool | None = None, prompt: PromptSpec | None = None) -> None:
        self.name, self.backend = name, backend
        self.sampling = sampling or Sampling()
        self.prompt = prompt or PromptSpec()
        self._chat = chat  # None: follow the prompt block

    def renamed(self, name: str) -> "Role":
        """The same model, sampling and prompt under another name (ledger entries go under it)."""
        return Role(name, self.backend, self.sampling, self._chat, self.prompt)

    @property
    def tokenizer(self) -> Any:
        return self.backend.tokenizer

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
            ids = tok.encode(text + (assistant_prefix or ""), add_special_tokens=False)
        else:
            text = "\n\n".join(m["content"] for m in messages) + (assistant_prefix or "")
            ids = tok.encode(text, add_special_tokens=True)
        return PromptIds(list(ids), [dict(m) for m in messages], assistant_prefix)

    def render_problem(self, problem: str, assistant_prefix: str | None = None) -> list[int]:
        """The recipe's prompt for one problem, rendered for this role's model."""
        if self.uses_chat:
            return self.render(self.prompt.messages(problem), assistant_prefix)
        text = self.prompt.plain_text(problem) + (assistant_prefix or "")
        return list(self.tokenizer.encode(text, add_special_tokens=True))

    def encode(self, text: str) -> list[int]:
        """Token ids of a text fragment to append to a prompt (no special tokens)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def chat_template_hash(self) -> str | None:
        template = getattr(self.tokenizer, "chat_template", None)
        if not template:
            return None
        return hashlib.sha256(str(template).encode()).hexdigest()[:16]
