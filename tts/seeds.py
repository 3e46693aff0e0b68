"""Call paths and seed derivation: sample i of a call gets H(run_seed, problem_id, call_path) + i,
so a rerun reproduces samples and topping N=16 up to N=64 reproduces the first 16. A call path is
made by `call_path` only: segments (a method's step, then the sample, round or beam it belongs to)
joined by "/", so a candidate's cost can be summed over every call under its prefix."""

from __future__ import annotations

import hashlib

# Leave headroom below 2**31 so `base + i` stays a valid 32-bit seed for every engine.
_SEED_SPACE = 2**31 - 2**20


def derive_seed(run_seed: int, problem_id: str, call_path: str) -> int:
    """Stable base seed for one call of one problem; independent of scheduling and batching."""
    digest = hashlib.blake2b(f"{run_seed}\x1f{problem_id}\x1f{call_path}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little") % _SEED_SPACE


def call_path(*segments: str | int) -> str:
    """The call path of one backend call: `call_path("think", 3, 1)` is `think/3/1`, and a segment may
    be a parent path (`call_path(parent, "b2")`). No segment is empty or starts or ends with "/" (it
    separates them); the path names the call's seed and its ledger entry."""
    parts = [str(s) for s in segments]
    bad = [p for p in parts if not p or p.startswith("/") or p.endswith("/") or "//" in p]
    if not parts or bad:
        raise ValueError(f"call path segments must be non-empty with no stray '/': {parts}")
    return "/".join(parts)
