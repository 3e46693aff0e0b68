"""What every `tts` command shares: bad input ends with one `error:` line and an exit code."""

from __future__ import annotations

import typer


def fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)
