"""The recipe's prompt block turned into chat messages (or a plain text prompt) for a problem."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PromptSpec:
    """System text, a `{problem}` template, few-shot examples and an answer-format instruction."""

    system: str | None = None
    template: str = "{problem}"
    few_shot: list[dict[str, str]] = field(default_factory=list)  # {"problem":..., "solution":...}
    answer_instruction: str | None = None
    chat: bool = True

    def user_text(self, problem: str) -> str:
        text = self.template.format(problem=problem)
        return f"{text}\n{self.answer_instruction}" if self.answer_instruction else text

    def messages(self, problem: str) -> list[dict[str, str]]:
        """Chat messages: system, few-shot turns, then the problem."""
        msgs: list[dict[str, str]] = []
        if self.system:
            msgs.append({"role": "system", "content": self.system})
        for shot in self.few_shot:
            msgs.append({"role": "user", "content": self.user_text(shot["problem"])})
            msgs.append({"role": "assistant", "content": shot["solution"]})
        msgs.append({"role": "user", "content": self.user_text(problem)})
        return msgs

    def plain_text(self, problem: str) -> str:
        """The same content as one text for models used without a chat template."""
        parts = [self.system] if self.system else []
        parts += [f"{self.user_text(s['problem'])}{s['solution']}" for s in self.few_shot]
        parts.append(self.user_text(problem))
        return "\n\n".join(parts)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "PromptSpec":
        return cls(**(data or {}))
