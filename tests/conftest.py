"""Shared fixtures: one tiny real Llama (random weights, trained BPE tokenizer) per test session,
saved and loaded back through the real loading path, and one hf backend serving it."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).parent))
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from tinymodel import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def hf_backend(tiny_model_dir):
    from tts.backends.hf import HFBackend

    # TTS_TEST_DEVICE=cuda runs the backend tests on a GPU (a device check, not CI).
    backend = HFBackend(str(tiny_model_dir), batch_wait_ms=5, device=os.environ.get("TTS_TEST_DEVICE", "cpu"))
    await backend.start()
    yield backend
    await backend.close()


@pytest.fixture(scope="session")
def problems_file(tmp_path_factory) -> Path:
    """A 24-problem JSONL dataset the tiny model can be run on."""
    path = tmp_path_factory.mktemp("data") / "problems.jsonl"
    with path.open("w") as fh:
        for i in range(24):
            fh.write(json.dumps({"id": f"p{i:02d}", "problem": f"What is {i} + 7?", "answer": str(i + 7)}) + "\n")
    return path


def tiny_recipe(model: Path, data: Path, out: Path, **changes) -> dict:
    """A recipe mapping for the tiny model; `changes` replace top-level fields."""
    recipe = {
        "name": "tiny",
        "seed": 3,
        "dataset": {"name": "jsonl", "path": str(data)},
        "roles": {"policy": {"model": str(model), "sampling": {"temperature": 1.0, "max_tokens": 12}}},
        "prompt": {"template": "Q: {problem}\nA:"},
        "strategy": {"generator": {"name": "sample", "role": "policy"}, "aggregator": "majority", "n": 4},
        "selectors": ["confidence", "vote"],
        "extractor": "last_number",
        "grader": "exact",
        "concurrency": 4,
        "output": {"dir": str(out)},
    }
    recipe.update(changes)
    return recipe


@pytest.fixture
def venv_env() -> dict:
    """Environment for subprocesses running the installed `tts` command."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    return env


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def toy_hf():
    """The packaged toy model on the hf backend (the reference the vLLM paths are checked against)."""
    from tts.backends.hf import HFBackend

    backend = HFBackend("toy:default", dtype="float32")
    await backend.start()
    yield backend
    await backend.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def vllm_toy():
    """One in-process vLLM engine on the toy model, shared by the whole test run (start-up ~30 s)."""
    pytest.importorskip("vllm")
    from tts.backends.vllm import VLLMBackend

    backend = VLLMBackend("toy:default", dtype="float32", max_model_len=128, engine_args={"block_size": 32})
    await backend.start()
    yield backend
    await backend.close()


@pytest.fixture(scope="session")
def toy_lora_dir(tmp_path_factory) -> Path:
    """A LoRA adapter for the toy model with non-zero weights, so it visibly changes outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tts.toy import DEFAULT_MODEL

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(DEFAULT_MODEL)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"],
                                            init_lora_weights=False))
    out = tmp_path_factory.mktemp("toy-lora")
    model.save_pretrained(out)
    return out


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def vllm_toy_lora(toy_lora_dir):
    pytest.importorskip("vllm")
    from tts.backends.vllm import VLLMBackend

    backend = VLLMBackend("toy:default", dtype="float32", max_model_len=128, lora=True, max_lora_rank=8)
    await backend.start()
    yield backend
    await backend.close()


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    """A vLLM OpenAI-compatible server on the toy model, on a free loopback port."""
    pytest.importorskip("vllm")
    from tts.backends.serve import VLLMServer

    from tts.toy import DEFAULT_MODEL

    server = VLLMServer(str(DEFAULT_MODEL), log=tmp_path_factory.mktemp("server") / "vllm.log").start()
    yield server
    server.kill(signal.SIGTERM)
