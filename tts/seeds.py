"""Seed derivation: sample i of a call gets H(run_seed, problem_id, call_path) + i, so a rerun
reproduces samples and topping N=16 up to N=64 reproduces the first 16."""

from __future__ import annotations

import hashlib

# Leave headroom below 2**31 so `base + i` stays a valid 32-bit seed for every engine.
_SEED_SPACE = 2**31 - 2**20


def derive_seed(run_seed: int, problem_id: str, call_path: str) -> int:
    """Stable base seed for one call of one problem; independent of scheduling and batching."""
    digest = hashlib.blake2b(f"{run_seed}\x1f{problem_id}\x1f{call_path}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little") % _SEED_SPACE
