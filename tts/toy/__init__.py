"""The built-in toy task: left-to-right arithmetic with a checkable chain of thought, and a small
Llama trained on it, so every method can be run and measured on 2 CPU cores with no hub."""

from pathlib import Path

WEIGHTS = Path(__file__).parent / "weights"
DEFAULT_MODEL = WEIGHTS / "default"
