"""The `tts` command of this interpreter's environment, run as a user would (the product path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def tts(*args: str) -> subprocess.CompletedProcess:
    """Run `tts ARGS`; exit with its stderr's tail when it fails."""
    cmd = [str(Path(sys.executable).with_name("tts")), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return proc
