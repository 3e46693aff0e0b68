#!/usr/bin/env bash
# Set up the environment when missing, then run the quickstart recipe and print its scaling table.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/tts run recipes/quickstart.yaml "$@"
