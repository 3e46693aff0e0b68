"""The sandbox's adversarial suite: hostile programs, each with a check that it was contained.
`tts sandbox check` runs it on this machine; the tests run it in CI."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tts.verifiers.sandbox import ExecResult, Limits, Sandbox, uid_processes


@dataclass
class Case:
    name: str
    program: str
    contained: Callable[[ExecResult, "Host"], bool]
    limits: Limits | None = None


@dataclass
class Host:
    """What the parent set up for the hostile programs to attack, and how to inspect it afterwards."""

    token: str
    victim_dir: Path
    victim: Path
    secret: str
    port: int
    listener: socket.socket

    def escaped_files(self) -> list[str]:
        names = [f"/tmp/escape-{self.token}", f"/var/tmp/escape-{self.token}", f"/dev/shm/escape-{self.token}",
                 str(Path.home() / f"escape-{self.token}"), f"/escape-{self.token}"]
        return [n for n in names if os.path.exists(n)]

    def connections(self) -> int:
        self.listener.setblocking(False)
        count = 0
        try:
            while True:
                self.listener.accept()[0].close()
                count += 1
        except (BlockingIOError, OSError):
            return count


def sandbox_processes(sandbox: Sandbox) -> list[int]:
    """Pids of live processes owned by any of the sandbox's worker uids."""
    return [p for slot in range(sandbox.workers or 1) for p in uid_processes(sandbox.uid_base + slot)]


def cases(host: Host) -> list[Case]:
    t = host.token
    return [
        Case("infinite loop", "while True:\n    pass\n", lambda r, h: not r.ok and r.seconds < 30),
        Case("fork bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
             lambda r, h: not r.ok),
        Case("10 GB allocation", "x = bytearray(10 * 1024 ** 3)\nprint('allocated')\n",
             lambda r, h: "allocated" not in r.stdout and "MemoryError" in r.stderr),
        Case("writes outside its directory",
             "import os\nfor p in ['/tmp', '/var/tmp', '/dev/shm', os.path.expanduser('~'), '/']:\n"
             f"    try:\n        open(os.path.join(p, 'escape-{t}'), 'w').write('x')\n    except OSError:\n        pass\n",
             lambda r, h: not h.escaped_files()),
        Case("deletes the parent's files",
             f"import os, shutil\nfor f in [{str(host.victim)!r}]:\n    try:\n        os.remove(f)\n    except OSError as e:\n"
             f"        print('blocked', e)\nshutil.rmtree({str(host.victim_dir)!r}, ignore_errors=True)\n",
             lambda r, h: h.victim.exists()),
        Case("socket to 127.0.0.1",
             f"import socket\ns = socket.socket()\ns.settimeout(2)\ntry:\n    s.connect(('127.0.0.1', {host.port}))\n"
             "    print('connected')\nexcept OSError as e:\n    print('blocked', e)\n",
             lambda r, h: "connected" not in r.stdout and h.connections() == 0),
        Case("socket to an outside address",
             "import socket\nfor addr in [('1.1.1.1', 80), ('8.8.8.8', 53)]:\n    s = socket.socket()\n    s.settimeout(2)\n"
             "    try:\n        s.connect(addr)\n        print('connected')\n    except OSError as e:\n        print('blocked', e)\n",
             lambda r, h: "connected" not in r.stdout),
        Case("reads environment secrets", "import os\nprint(dict(os.environ))\nprint(open('/proc/1/environ').read())\n",
             lambda r, h: h.secret not in r.stdout + r.stderr),
        Case("prints 100 MB", "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(chunk)\n",
             lambda r, h: r.truncated and len(r.stdout) <= (1 << 20)),
        Case("detached child outlives the parent",
             "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
             " start_new_session=True)\nprint('parent exits')\n",
             lambda r, h: "parent exits" in r.stdout),  # and, after the run, no process of a sandbox uid left
        Case("raises its own limits",
             "import resource\nfor res in [resource.RLIMIT_CPU, resource.RLIMIT_AS, resource.RLIMIT_NPROC, "
             "resource.RLIMIT_FSIZE]:\n    try:\n        resource.setrlimit(res, (resource.RLIM_INFINITY, "
             "resource.RLIM_INFINITY))\n        print('raised', res)\n    except (ValueError, OSError) as e:\n"
             "        print('blocked', res)\n",
             lambda r, h: "raised" not in r.stdout),
        Case("reads a private file", "print(open('/root/.bashrc').read()[:20])\nimport os\nprint(os.listdir('/root'))\n",
             lambda r, h: "[" not in r.stdout or ".bashrc" not in r.stdout),
    ]


async def run_suite(sandbox: Sandbox | None = None) -> list[dict]:
    """Run every case; each row says whether it was contained and what the program saw."""
    sandbox = sandbox or Sandbox(limits=Limits(wall_seconds=8, cpu_seconds=5, processes=32))
    token = uuid.uuid4().hex[:8]
    victim_dir = Path(tempfile.mkdtemp(prefix="tts-victim-"))
    victim = victim_dir / "precious.txt"
    victim.write_text("keep me")
    secret = f"tts-secret-{token}"
    os.environ["TTS_SANDBOX_SECRET"] = secret
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    host = Host(token, victim_dir, victim, secret, listener.getsockname()[1], listener)
    rows = []
    try:
        for case in cases(host):
            result = await sandbox.run_python(case.program, limits=case.limits)
            left = sandbox_processes(sandbox)
            contained = bool(case.contained(result, host)) and not left
            rows.append({"case": case.name, "contained": contained, "exit_code": result.exit_code,
                         "signal": result.signal, "timed_out": result.timed_out, "seconds": round(result.seconds, 2),
                         "left_processes": len(left), "output": (result.stdout + result.stderr)[-160:]})
    finally:
        os.environ.pop("TTS_SANDBOX_SECRET", None)
        listener.close()
        for name in host.escaped_files():
            os.remove(name)
    return rows
