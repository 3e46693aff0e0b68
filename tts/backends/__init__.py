"""Backends: one engine per role, found by name through the backend registry."""

from tts.backends.base import Backend, BackendError

__all__ = ["Backend", "BackendError"]
