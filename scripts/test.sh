#!/usr/bin/env bash
# Set up the environment when missing, then run the fast test suite (slow tests: add -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -z "${TTS_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export TTS_DATA_DIR="$(cd ../shared/data && pwd)"
fi
exec .venv/bin/python -m pytest -m "not slow" "$@"
