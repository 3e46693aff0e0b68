"""Model references a recipe may name, resolved the same way for every backend: a local folder,
a hub id, a `.gguf` file, or `toy:NAME` for a model packaged with tts."""

from __future__ import annotations

from pathlib import Path

from tts.backends.base import BackendError


def resolve_model(model: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """(folder or hub id, gguf file name or None); raises one line when it cannot be a model."""
    if model.startswith("toy:"):
        from tts.toy import WEIGHTS

        path = WEIGHTS / model[4:]
        if not path.exists():
            known = ", ".join(sorted(p.name for p in WEIGHTS.iterdir() if p.is_dir()))
            raise BackendError(f"no packaged toy model '{model}' (packaged: {known})")
        return str(path), gguf_file
    if model.endswith(".gguf") and gguf_file is None:
        return str(Path(model).parent), Path(model).name
    if gguf_file is None and not Path(model).exists() and model.count("/") != 1:
        raise BackendError(f"model '{model}' is neither a local folder nor a hub id (owner/name)")
    return model, gguf_file
