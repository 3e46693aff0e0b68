"""Test-time learning: pieces that touch weights or routing and need gradients (hf backend only).
Heavy imports (torch, transformers) happen inside the modules, never here."""
