"""What every `tts` command shares: bad input ends with one `error:` line and an exit code."""

from __future__ import annotations

import typer


def fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)

# Plain (click-style) help on every command: rich's panels print flags as `--json <bool>` and cut
# lines in pipes; plain help lists a flag as just its name.
PLAIN_HELP = None
