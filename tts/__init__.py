"""tts: a test-time scaling toolkit. Heavy libraries (torch, transformers, vllm) are imported only
inside the code that needs them, so `import tts` stays fast."""

__version__ = "0.1.0"
