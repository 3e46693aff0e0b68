"""Commands for code and SWE-bench work: `tts sandbox check` (is untrusted code contained here?)
and `tts swebench predictions` (a run's chosen patches in the harness's format). Registered on the
main app in tts.cli."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from tts.cli_common import PLAIN_HELP, fail

sandbox_app = typer.Typer(rich_markup_mode=PLAIN_HELP, help="The execution sandbox for untrusted code.", no_args_is_help=True)


@sandbox_app.command("check")
def check(isolation: str = typer.Option("strict", help="strict (namespaces, unprivileged uid) or weak")) -> None:
    """Run the adversarial suite (fork bomb, 10 GB allocation, sockets, escapes, ...) here and say
    which were contained."""
    from rich.console import Console
    from rich.table import Table

    from tts.verifiers.sandbox import Limits, Sandbox, SandboxUnavailable
    from tts.verifiers.sandbox_suite import run_suite

    try:
        rows = asyncio.run(run_suite(Sandbox(isolation=isolation, limits=Limits(wall_seconds=8, cpu_seconds=5,
                                                                               processes=32))))
    except (SandboxUnavailable, ValueError) as exc:
        fail(str(exc))
    table = Table(title=f"sandbox ({isolation}): {sum(r['contained'] for r in rows)} of {len(rows)} contained")
    for col in ("case", "contained", "exit", "signal", "timed out", "seconds"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["case"], "yes" if r["contained"] else "NO", str(r["exit_code"]), str(r["signal"]),
                      str(r["timed_out"]), str(r["seconds"]))
    Console().print(table)
    if not all(r["contained"] for r in rows):
        raise typer.Exit(1)


swebench_app = typer.Typer(rich_markup_mode=PLAIN_HELP, help="SWE-bench runs: predictions for the official harness.", no_args_is_help=True)


@swebench_app.command("predictions")
def predictions(run: Path = typer.Argument(..., help="a run folder of a SWE-bench recipe"),
                out: Path = typer.Option(..., help="the predictions JSONL to write"),
                model: str = typer.Option("tts", help="model_name_or_path written on every line")) -> None:
    """Write each finished instance's chosen patch as the harness's predictions JSONL."""
    from tts.records import read_records
    from tts.verifiers.swebench import write_predictions

    if not (run / "records.jsonl").exists():
        fail(f"no records.jsonl in {run}: is it a run folder?")
    count = write_predictions(read_records(run), out, model)
    typer.echo(f"wrote {count} predictions to {out}")
