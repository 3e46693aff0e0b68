"""A pool of worker processes for calls that may hang (math-verify on a hostile answer, sympy on a
huge exponent): each call has a deadline, and a worker that misses it is killed and replaced.
Workers are `python -m tts.verifiers.worker` subprocesses speaking JSON lines, so they never re-import
the caller's `__main__`. Waiting happens in a thread: the event loop keeps serving meanwhile."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import subprocess
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)


class _Worker:
    def __init__(self, fn: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "tts.verifiers.worker", fn], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)

    def ask(self, args: list, timeout: float) -> tuple[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(args) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return ("timeout", None)
        line = self.proc.stdout.readline()
        if not line:
            return ("error", "worker exited")
        status, value = json.loads(line)
        return status, value

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


class KillablePool:
    """Run the function at dotted path `fn` in worker processes with a per-call timeout.

    The first call to a fresh worker also pays its imports, so `warm()` starts workers ahead and
    the timeout covers only the call itself once a worker has answered its ping."""

    def __init__(self, fn: str, workers: int = 2, timeout: float = 1.5, start_timeout: float = 30.0) -> None:
        self.fn, self.size, self.timeout, self.start_timeout = fn, workers, timeout, start_timeout
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._sem: asyncio.Semaphore | None = None
        self.kills = 0

    def _spawn(self) -> _Worker | None:
        worker = _Worker(self.fn)
        status, _ = worker.ask(["__ping__"], self.start_timeout)
        if status != "ok":
            worker.kill()
            log.error("grading worker for %s failed to start (%s)", self.fn, status)
            return None
        return worker

    def _get(self) -> _Worker | None:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._spawn()

    def _put(self, worker: _Worker | None) -> None:
        if worker is not None:
            with self._lock:
                self._idle.append(worker)

    def warm(self) -> None:
        """Start all workers now (blocking)."""
        while len(self._idle) < self.size:
            self._put(self._spawn())

    def _call(self, args: list) -> tuple[str, Any]:
        worker = self._get()
        if worker is None:
            return ("error", "no worker")
        try:
            status, value = worker.ask(args, self.timeout)
        except (OSError, ValueError) as exc:
            worker.kill()
            return ("error", f"worker died: {exc}")
        if status == "timeout":
            worker.kill()
            self.kills += 1
            # Replace it in the background so the next call need not wait for a cold start.
            threading.Thread(target=lambda: self._put(self._spawn()), daemon=True).start()
        else:
            self._put(worker)
        return status, value

    async def run(self, *args: Any) -> tuple[str, Any]:
        """("ok", value) | ("error", message) | ("timeout", None)."""
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.size)
        async with self._sem:
            return await asyncio.to_thread(self._call, list(args))

    def close(self) -> None:
        with self._lock:
            workers, self._idle = self._idle, []
        for w in workers:
            w.kill()
