"""The next-token choice of the learning methods' in-process decode loops (rerouting, PERK, state
tuning): the hf backend's own sampler and seeding rule (temperature, top-p, top-k, min_tokens,
stop ids; one CPU generator seeded like the backend's row), so a method that decodes outside the
backend samples as the backend would and honours every sampling field it is given."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from tts.backends.sampler import RowState, make_generator, sample_next
from tts.types import Sampling


class RowSampler:
    """One sequence: `pick(logits)` returns (token, its log-probability) and remembers the token,
    so min_tokens counts what was produced. Stop strings and bad words are the caller's (as in hf)."""

    def __init__(self, sampling: Sampling, seed: int | None, eos: Iterable[int]) -> None:
        eos = frozenset(eos)
        early = sorted(eos | set(sampling.stop_token_ids))
        self.row = RowState(sampling, make_generator(seed), early, [], eos)

    def pick(self, logits: torch.Tensor) -> tuple[int, float]:
        tokens, logprobs = sample_next(logits.reshape(1, -1), [self.row])
        self.row.out_ids.append(tokens[0])
        self.row.logprobs.append(logprobs[0])
        return tokens[0], logprobs[0]

    def done(self, token: int) -> bool:
        """The sample ends here: an end-of-sequence or stop id (only once min_tokens are out)."""
        return token in self.row.eos_ids or token in self.row.sampling.stop_token_ids
