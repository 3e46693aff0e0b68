"""Durable per-problem records: `records.jsonl`, one JSON line per finished problem, appended and
flushed to the OS at once (a killed process loses no record) and fsynced at most once per
`FSYNC_SECONDS` and at close (group commit: a power loss can lose the last second's records, which a
resume runs again). The record is the commit point; a killed run resumes from it."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
FSYNC_SECONDS = 1.0  # an fsync per record cost 0.16 ms each: a third of tts's per-problem work at N = 1


class RecordStore:
    """Append-only store of problem records; the last record of a problem id wins."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "records.jsonl"
        self._fh: Any = None
        self._synced = 0.0

    def load(self) -> dict[str, dict[str, Any]]:
        """Records by problem id; a torn last line (killed mid-write) is cut off the file."""
        if not self.path.exists():
            return {}
        raw = self.path.read_bytes()
        cut = raw.rfind(b"\n") + 1
        if cut < len(raw):
            log.warning("%s: dropping a torn last line (%d bytes) left by a killed run", self.path, len(raw) - cut)
            with self.path.open("r+b") as fh:
                fh.truncate(cut)
        out: dict[str, dict[str, Any]] = {}
        for line in raw[:cut].splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["id"]] = rec
        return out

    def append(self, record: dict[str, Any]) -> bool:
        """Write one record (flushed before returning; fsynced at most `FSYNC_SECONDS` later, or at
        close). A record that cannot be written as JSON (an object, a NaN) is replaced by an error
        record naming the field, so one problem fails instead of the run; returns False then."""
        try:
            line, ok = _dumps(record), True
        except (TypeError, ValueError) as exc:
            where = _bad_field(record) or "?"
            log.warning("problem %s: record not serialisable at %s: %s", record.get("id"), where, exc)
            line, ok = _dumps(_unserialisable(record, where, exc)), False
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write(line + "\n")
        self._fh.flush()
        now = time.monotonic()
        if now - self._synced >= FSYNC_SECONDS:
            os.fsync(self._fh.fileno())
            self._synced = now
        return ok

    def close(self) -> None:
        if self._fh is not None:
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, allow_nan=False, default=_jsonable)


def _bad_field(obj: Any, path: str = "") -> str | None:
    """The path of the first value JSON cannot hold (`candidates[3].scores.prm`), or None."""
    if isinstance(obj, dict):
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(obj))
    else:
        try:
            json.dumps(obj, allow_nan=False, default=_jsonable)
            return None
        except (TypeError, ValueError):
            return path or "<record>"
    return next((bad for key, value in items if (bad := _bad_field(value, key))), None)


def _unserialisable(record: dict[str, Any], where: str, exc: Exception) -> dict[str, Any]:
    """An error record in place of one that cannot be written: what was paid for (cost, time) is kept."""
    kept = {k: record[k] for k in ("id", "reference", "cost", "seconds") if k in record}
    out = {**kept, "status": "error", "error": f"record not serialisable at {where}: {exc}"}
    try:
        _dumps(out)
        return out
    except (TypeError, ValueError):
        return {"id": record.get("id"), "status": "error", "error": out["error"]}


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_records(run_dir: str | Path) -> list[dict[str, Any]]:
    """All final records of a run, in file order of their last write."""
    store = RecordStore(Path(run_dir))
    if not store.path.exists():
        raise FileNotFoundError(f"no records in {run_dir} (expected {store.path})")
    return list(store.load().values())
