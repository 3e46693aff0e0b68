"""Starting a local vLLM OpenAI-compatible server (for tests, benchmarks and single-machine runs):
`python -m vllm.entrypoints.openai.api_server` on a free loopback port, waited for until healthy,
restartable, and stopped with its whole process group. CPU-safe defaults as in DESIGN.md."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMServer:
    def __init__(self, model: str, served_name: str = "toy", port: int | None = None, log: Path | None = None,
                 chat_template: str | None = None, max_model_len: int = 128, extra: list[str] | None = None):
        self.model, self.served_name = model, served_name
        self.chat_template, self.max_model_len, self.extra = chat_template, max_model_len, extra or []
        self.port = port or free_port()
        self.log = log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 240) -> "VLLMServer":
        env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1")
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
               "--served-model-name", self.served_name, "--host", "127.0.0.1", "--port", str(self.port),
               "--dtype", "float32", "--max-model-len", str(self.max_model_len), "--enforce-eager",
               "--block-size", "32", "--no-enable-chunked-prefill", *self.extra]
        if self.chat_template:
            cmd += ["--chat-template", self.chat_template]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.proc.returncode} (log: {self.log})")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.kill()
        raise RuntimeError(f"vLLM server did not become healthy in {timeout} s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(30)
        self.proc = None

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name) and not line.startswith("#"):
                    return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)
