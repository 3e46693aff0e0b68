"""The execution sandbox for untrusted code (model-written programs, tests and patches).

`strict` isolation (the default; needs root and util-linux `unshare`/`setpriv`): each run gets new
network, pid, mount, ipc and uts namespaces, runs as an unprivileged uid of its own worker slot,
sees fresh size-capped tmpfs on /tmp, /var/tmp and /dev/shm (its own directory is bound back in)
and an empty tmpfs over private directories such as /root (only the interpreter is bound back),
with CPU-time, address-space, file-size and process-count limits (soft = hard, so it cannot raise
them), a scrubbed environment, a wall-clock timeout and capped output. When the program ends, or
the timeout kills it, the kernel kills everything left in its pid namespace, detached children
included. `weak` isolation (opt-in, for machines without namespaces) keeps only the limits, the
scrubbed environment and a process-group kill: no network or filesystem isolation."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

log = logging.getLogger(__name__)
ISOLATIONS = ("strict", "weak")
HIDDEN = ("/tmp", "/var/tmp", "/dev/shm")  # world-writable: replaced by private tmpfs
STAGES = ("/mnt", "/srv", "/media", "/opt")  # an existing directory to stage bind mounts on


class SandboxUnavailable(RuntimeError):
    """Strict isolation cannot be set up here; the message says how to opt into `weak`."""


@dataclass(frozen=True)
class Limits:
    """Per-run limits; every one is enforced by the kernel, the wall clock by the parent."""

    cpu_seconds: int = 10
    wall_seconds: float = 20.0
    memory_mb: int = 2048  # address space (RLIMIT_AS)
    file_mb: int = 64  # largest file it may write (RLIMIT_FSIZE)
    processes: int = 64  # processes of its uid (RLIMIT_NPROC)
    output_bytes: int = 1 << 20  # stdout and stderr are each cut here
    tmpfs_mb: int = 128


@dataclass
class ExecResult:
    """What one sandboxed run did."""

    exit_code: int | None  # None when a signal ended it
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    signal: int | None = None
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def _private_ancestor(path: Path) -> Path | None:
    """The topmost ancestor of `path` that other users cannot enter (or a hidden directory)."""
    for parent in reversed(path.parents[:-1] if len(path.parents) > 1 else []):
        if str(parent) in HIDDEN:
            return parent
        try:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return parent
        except OSError:
            return None
    return None


def _interpreter_roots() -> list[Path]:
    """Directories the sandboxed interpreter needs: the venv and the installation it points to."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent}
    return sorted(r for r in roots if r.exists())


@dataclass
class Sandbox:
    """Runs argv lists in a fresh sandbox each; at most `workers` at once."""

    isolation: str = "strict"
    limits: Limits = field(default_factory=Limits)
    workers: int | None = None
    python: str | None = None  # the interpreter `python` in argv means (default: this one)
    expose: tuple[str, ...] = ()  # more read-only paths inside private directories
    uid_base: int = 61000
    base_dir: str | None = None

    def __post_init__(self) -> None:
        if self.isolation not in ISOLATIONS:
            raise ValueError(f"sandbox isolation must be one of {', '.join(ISOLATIONS)}, got '{self.isolation}'")
        self.workers = self.workers or max(1, os.cpu_count() or 1)
        self.python = self.python or sys.executable
        self._slots: asyncio.Queue | None = None
        self._checked = False
        self.base = Path(self.base_dir or Path(tempfile.gettempdir()) / "tts-sandbox")

    # -- setup -------------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise one clear line if strict isolation cannot work on this machine."""
        if self._checked or self.isolation == "weak":
            return
        why = None
        if os.geteuid() != 0:
            why = "it needs root (to enter namespaces and switch to an unprivileged uid)"
        elif not (shutil.which("unshare") and shutil.which("setpriv")):
            why = "util-linux 'unshare' and 'setpriv' are not installed"
        elif not any(Path(s).is_dir() for s in STAGES):
            why = f"none of {', '.join(STAGES)} exists to stage mounts on"
        else:
            probe = subprocess.run(["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount", "true"],
                                   capture_output=True, text=True)
            if probe.returncode != 0:
                why = f"namespaces are not available ({probe.stderr.strip() or probe.returncode})"
        if why:
            raise SandboxUnavailable(f"strict sandbox unavailable: {why}; set sandbox isolation: weak to run "
                                     "untrusted code with resource limits only (no network or filesystem isolation)")
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o711)
        self._checked = True

    def _slot_queue(self) -> asyncio.Queue:
        if self._slots is None:
            self._slots = asyncio.Queue()
            for i in range(self.workers):
                self._slots.put_nowait(i)
        return self._slots

    # -- running -----------------------------------------------------------------------------------
    async def run(self, argv: list[str], files: dict[str, str | bytes] | None = None, tree: str | Path | None = None,
                  limits: Limits | None = None, stdin: bytes | None = None) -> ExecResult:
        """Run `argv` (its first element `python` means the sandbox interpreter) in a new directory
        holding `files` (relative paths) and a copy of `tree`; the directory is removed afterwards."""
        self.check()
        lim = limits or self.limits
        slots = self._slot_queue()
        slot = await slots.get()
        work = Path(tempfile.mkdtemp(prefix="run-", dir=self.base if self.isolation == "strict" else None))
        try:
            uid = self.uid_base + slot
            await asyncio.to_thread(self._populate, work, files or {}, tree, uid)
            argv = [self.python if a == "python" and i == 0 else a for i, a in enumerate(argv)]
            cmd = self._strict_command(argv, work, uid, lim) if self.isolation == "strict" else argv
            return await self._execute(cmd, work, lim, stdin)
        finally:
            if self.isolation == "strict":
                await _until_gone(self.uid_base + slot)
            await asyncio.to_thread(shutil.rmtree, work, True)
            slots.put_nowait(slot)

    async def run_python(self, source: str, files: dict[str, str | bytes] | None = None,
                         limits: Limits | None = None, name: str = "main.py") -> ExecResult:
        """Run one Python program (isolated mode: no user site, no cwd on the path beyond its own)."""
        return await self.run(["python", "-I", "-B", name], {**(files or {}), name: source}, limits=limits)

    async def map(self, jobs: list[dict], limits: Limits | None = None) -> list[ExecResult]:
        """Run many `run(**job)` at once, `workers` at a time, results in order."""
        return list(await asyncio.gather(*(self.run(**{"limits": limits, **job}) for job in jobs)))

    def _populate(self, work: Path, files: dict[str, str | bytes], tree: str | Path | None, uid: int) -> None:
        if tree is not None:
            shutil.copytree(tree, work, dirs_exist_ok=True, symlinks=True)
        for rel, content in files.items():
            path = (work / rel).resolve()
            if work.resolve() not in path.parents:
                raise ValueError(f"sandbox file '{rel}' is outside the run directory")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        if self.isolation == "strict":
            for root, dirs, names in os.walk(work):
                for name in [*dirs, *names]:
                    os.lchown(os.path.join(root, name), uid, uid)
            os.chown(work, uid, uid)
            os.chmod(work, 0o700)

    def _strict_command(self, argv: list[str], work: Path, uid: int, lim: Limits) -> list[str]:
        """unshare + a root setup script (private tmpfs, bound-back paths) + setpriv to the slot uid."""
        keep = [work, *_interpreter_roots(), *(Path(p) for p in self.expose)]
        keep = [p for p in keep if not any(q != p and q in p.parents for q in keep)]  # outermost only
        hide: dict[Path, list[Path]] = {Path(h): [] for h in HIDDEN}
        for path in keep:
            anc = _private_ancestor(path)
            if anc is not None:
                hide.setdefault(anc, []).append(path)
        stage = next(s for s in STAGES if Path(s).is_dir())
        q = shlex.quote
        lines = [f"mount -t tmpfs -o size=1m,mode=700 tmpfs {stage}"]
        moves = []
        for i, path in enumerate(p for paths in hide.values() for p in paths):
            lines.append(f"mkdir {stage}/{i} && mount --bind {q(str(path))} {stage}/{i}")
            moves.append((i, path))
        for anc in hide:
            mode = "1777" if str(anc) in HIDDEN else "755"
            lines.append(f"mount -t tmpfs -o size={lim.tmpfs_mb}m,mode={mode},nosuid,nodev tmpfs {q(str(anc))}")
        for i, path in moves:
            lines.append(f"mkdir -p {q(str(path))} && mount --move {stage}/{i} {q(str(path))}")
        env = ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", f"HOME={work}", "LANG=C.UTF-8",
               "PYTHONDONTWRITEBYTECODE=1", f"TMPDIR={work}"]
        drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                "--inh-caps=-all", "--bounding-set=-all"]
        # a shell stays as the namespace's init and exits 128+N when a signal (SIGXCPU, SIGKILL)
        # ended the program, so the status survives unshare
        waiter = ["sh", "-c", '"$@"; exit $?', "sh"]
        lines.append(f"cd {q(str(work))} && exec {' '.join(q(a) for a in [*drop, *env, *waiter, *argv])}")
        script = "set -e\n" + "\n".join(lines)
        return ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount", "--ipc", "--uts",
                "--propagation", "private", "sh", "-c", script]

    async def _execute(self, cmd: list[str], work: Path, lim: Limits, stdin: bytes | None) -> ExecResult:
        env = None if self.isolation == "strict" else {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work),
                                                       "LANG": "C.UTF-8", "TMPDIR": str(work)}
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=work, env=env, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=lambda: _apply_limits(lim),
            start_new_session=True)
        readers = [asyncio.ensure_future(_capped(s, lim.output_bytes)) for s in (proc.stdout, proc.stderr)]
        if stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.close()
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), lim.wall_seconds)
        except asyncio.TimeoutError:
            timed_out = True
        finally:
            if proc.returncode is None or self.isolation == "weak":
                _kill_group(proc.pid)  # strict: killing unshare kills the namespace (--kill-child)
            await proc.wait()
        (out, cut_out), (err, cut_err) = await asyncio.gather(*readers)
        code = proc.returncode
        sig = -code if code is not None and code < 0 else (code - 128 if code and code > 128 else None)
        return ExecResult(None if (sig or timed_out) else code, out, err, time.perf_counter() - t0, timed_out,
                          sig, cut_out or cut_err)


def _apply_limits(lim: Limits) -> None:
    """In the child before exec: hard limits equal to soft ones, so the program cannot raise them."""
    mb = 1 << 20
    for res, value in ((resource.RLIMIT_CPU, lim.cpu_seconds), (resource.RLIMIT_AS, lim.memory_mb * mb),
                       (resource.RLIMIT_FSIZE, lim.file_mb * mb), (resource.RLIMIT_NPROC, lim.processes),
                       (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(res, (value, value))


def uid_processes(uid: int) -> list[int]:
    """Pids of live processes owned by `uid` (zombies awaiting their reaper included)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    found.append(int(pid))
            except OSError:
                pass
    return found


async def _until_gone(uid: int, timeout: float = 15.0) -> None:
    """Wait until the kernel has killed and reaped everything a run left (its pid namespace
    dies with its init, but a fork bomb takes a moment), so a slot's uid is clean for the next run."""
    deadline = time.monotonic() + timeout
    while uid_processes(uid):
        if time.monotonic() > deadline:
            log.warning("sandbox uid %d still has processes %s after %.0fs", uid, uid_processes(uid)[:5], timeout)
            return
        await asyncio.sleep(0.05)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def _capped(stream: asyncio.StreamReader, cap: int) -> tuple[str, bool]:
    """Read a stream to its end, keeping the first `cap` bytes (the rest is drained, not stored)."""
    kept, size = bytearray(), 0
    while chunk := await stream.read(1 << 16):
        size += len(chunk)
        if len(kept) < cap:
            kept += chunk[: cap - len(kept)]
    return kept.decode("utf-8", "replace"), size > cap


def sandbox_from(spec: dict | None) -> Sandbox:
    """A sandbox from a recipe mapping: `{isolation, workers, python, expose, limits: {...}}`."""
    spec = dict(spec or {})
    limits = spec.pop("limits", None) or {}
    unknown = set(limits) - set(Limits.__dataclass_fields__)
    if unknown:
        raise ValueError(f"sandbox.limits: unknown field '{sorted(unknown)[0]}' "
                         f"(expected: {', '.join(Limits.__dataclass_fields__)})")
    if "expose" in spec:
        spec["expose"] = tuple(spec["expose"])
    return Sandbox(limits=replace(Limits(), **limits), **spec)
