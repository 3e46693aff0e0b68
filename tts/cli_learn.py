"""`tts learn METHOD`: training for test-time learning methods (accelerate-based; run under
`accelerate launch` for several processes). Registered on the main app in tts.cli."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tts.cli_common import fail

learn_app = typer.Typer(help="Train test-time learning methods.", no_args_is_help=True)


@learn_app.command("perk")
def perk(out: Path = typer.Option(..., help="folder for perk.pt, config.json, card.json, checkpoints"),
         task: str = typer.Option("kv_recall", help="meta-training task (kv_recall: synthetic key-value recall)"),
         base: Optional[str] = typer.Option(None, help="base model folder (default: a tiny GPT-2 built and pre-trained here)"),
         steps: int = typer.Option(600, help="meta-training steps (episodes per process)"),
         outer_lr: float = typer.Option(3e-4), pretrain_steps: int = typer.Option(600),
         inner_steps: int = typer.Option(4), unroll_from: int = typer.Option(2), inner_lr: float = typer.Option(2e-2),
         rank: int = typer.Option(16), weighted: bool = typer.Option(False, help="token-weighted inner loss (the reference's)"),
         positive_lrs: bool = typer.Option(True, help="learn log α (positive rates; the reference's are unconstrained)"),
         seed: int = typer.Option(0), save_every: int = typer.Option(200),
         eval_every: int = typer.Option(100, help="validation accuracy every N steps (0: never); the best is kept"),
         eval_episodes: int = typer.Option(50),
         resume: bool = typer.Option(False, help="continue from OUT/checkpoint")) -> None:
    """Meta-train PERK: the LoRA initialisation, per-step learning rates and token weights."""
    import logging

    from tts.learn.perk import PERKConfig
    from tts.learn.train_perk import TrainSettings, train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if task != "kv_recall":
        fail(f"unknown PERK task '{task}' (tasks: kv_recall)")
    targets = ("c_attn", "c_proj", "c_fc", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    try:
        config = PERKConfig(rank=rank, alpha=float(rank), target_modules=targets, inner_steps=inner_steps,
                            unroll_from=unroll_from, inner_lr=inner_lr, weighted=weighted, weight_hidden=32,
                            positive_lrs=positive_lrs)
        summary = train(TrainSettings(str(out), steps, outer_lr, pretrain_steps, seed, save_every, base, resume,
                                      eval_every, eval_episodes), config)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    typer.echo(f"saved {out}: {summary['steps']} meta-steps on {summary['processes']} process(es), "
               f"{summary['seconds']:.0f} s, final outer loss {summary['final_outer_loss']:.3f}")
