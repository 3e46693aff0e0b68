"""How long work shows its progress: a live bar on a terminal, one log line per step of progress
when stderr is a file or a pipe (a bar there becomes one very long line), or nothing. Lines go to
the `tts.progress` logger, which the CLI shows at INFO even when other loggers show warnings only."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Literal

log = logging.getLogger("tts.progress")
Mode = Literal["bar", "log", "off"]


def mode_for(wanted: bool | str) -> Mode:
    """`True` → a bar on a terminal, log lines elsewhere; `False` → off; or a mode by name."""
    if wanted is True:
        return "bar" if sys.stderr.isatty() else "log"
    if wanted is False:
        return "off"
    if wanted not in ("bar", "log", "off"):
        raise ValueError(f"progress must be bar, log or off, got {wanted!r}")
    return wanted  # type: ignore[return-value]


def quiet_library_bars() -> None:
    """When stderr is not a terminal, turn off tqdm bars of the libraries we call (transformers'
    weight loading and GGUF conversion, hub downloads): tqdm reads `TQDM_DISABLE` when it is first
    imported, so this must run before torch/transformers are. A user's own setting wins."""
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def phase(what: str, started: float) -> None:
    """One line for a finished phase of long work (a model loaded, an engine started)."""
    log.info("%s in %.1f s", what, time.perf_counter() - started)


class NoProgress:
    def __enter__(self) -> "NoProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def advance(self, done: int, failed: int, correct: float) -> None:
        return None


def _describe(done: int, failed: int, correct: float) -> str:
    ok = done - failed
    acc = f"acc {correct / ok:.3f}" if ok else ""
    return f"{acc} failed {failed}".strip() if failed else acc


class RichProgress(NoProgress):
    """A live bar (terminal only)."""

    def __init__(self, total: int, label: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.description}"), TimeElapsedColumn())
        self.task = self.bar.add_task("", total=total)

    def __enter__(self) -> "RichProgress":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def advance(self, done: int, failed: int, correct: float) -> None:
        self.bar.update(self.task, advance=1, description=_describe(done, failed, correct))


class LogProgress(NoProgress):
    """A line at every tenth of the work and at least once a minute, and one at the end."""

    def __init__(self, total: int, label: str, every_s: float = 60.0) -> None:
        self.total, self.label, self.every_s = total, label, every_s
        self.count, self.t0 = 0, time.perf_counter()
        self.last_t, self.last_tenth = self.t0, 0

    def advance(self, done: int, failed: int, correct: float) -> None:
        self.count += 1
        now, tenth = time.perf_counter(), 10 * self.count // self.total
        if tenth > self.last_tenth or now - self.last_t >= self.every_s or self.count == self.total:
            self.last_t, self.last_tenth = now, tenth
            extra = _describe(done, failed, correct)
            log.info("%s: %d/%d%s, %.0f s", self.label, self.count, self.total, f" ({extra})" if extra else "",
                     now - self.t0)


def progress(mode: Mode, total: int, label: str = "tts run") -> NoProgress:
    if not total or mode == "off":
        return NoProgress()
    return RichProgress(total, label) if mode == "bar" else LogProgress(total, label)
