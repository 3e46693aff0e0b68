"""`tts learn METHOD`: training for test-time learning methods (accelerate-based; run under
`accelerate launch` for several processes). Registered on the main app in tts.cli."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tts.cli_common import PLAIN_HELP, fail

learn_app = typer.Typer(rich_markup_mode=PLAIN_HELP, help="Train test-time learning methods: PERK, LaCT, RWKV-7, states.", no_args_is_help=True)


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
    """Meta-train PERK.

    Learns the LoRA initialisation, per-step learning rates and token weights."""
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


@learn_app.command("lact")
def lact(out: Path = typer.Option(..., help="model folder to write (weights, config, tokenizer, lact_card.json)"),
         task: str = typer.Option("recall", help="training task (recall: multi-query associative recall)"),
         steps: int = typer.Option(3000), lr: float = typer.Option(3e-3), seed: int = typer.Option(0),
         chunk_size: int = typer.Option(64), window: int = typer.Option(32),
         lact: bool = typer.Option(True, help="--no-lact trains the sliding-window-attention-only baseline"),
         muon: bool = typer.Option(False, help="Muon (Newton–Schulz) on each chunk's update"),
         momentum: bool = typer.Option(True), weight_norm: bool = typer.Option(True),
         key_shift: bool = typer.Option(True, help="keys mix in the previous token (our extension)"),
         intermediate_size: Optional[int] = typer.Option(None, help="MLP width (default 4 × hidden)"),
         save_every: int = typer.Option(500, help="checkpoint every N steps (OUT/checkpoint.pt)"),
         resume: bool = typer.Option(False, help="continue from OUT/checkpoint.pt")) -> None:
    """Train a small LaCT model.

    Window attention plus large-chunk fast weights (--no-lact: window attention alone)."""
    from tts.learn.lact.train import LaCTTrain, train

    if task != "recall":
        fail(f"unknown LaCT task '{task}' (tasks: recall)")
    if window < 1 or chunk_size < 1 or steps < 1:
        fail("steps, chunk-size and window must be >= 1")
    settings = LaCTTrain(out=str(out), steps=steps, lr=lr, seed=seed, chunk_size=chunk_size, window=window,
                         use_lact=lact, use_muon=muon, use_momentum=momentum, weight_norm=weight_norm,
                         key_shift=key_shift, base_lr=0.1, intermediate_size=intermediate_size,
                         save_every=save_every, resume=resume)
    _, card = train(settings)
    ev = card["eval"]
    typer.echo(f"saved {out}: {card['parameters']} parameters, {card['seconds']:.0f} s; recall {100 * ev['all']:.1f}% "
               f"(outside the window {100 * ev['outside']:.1f}%, chance {100 * card['chance']:.2f}%)")


@learn_app.command("rwkv7")
def rwkv7(out: Path = typer.Option(..., help="model folder to write"),
          task: str = typer.Option("pattern", help="pre-training task (pattern: in-context lookup of random tables)"),
          steps: int = typer.Option(1200), seed: int = typer.Option(0)) -> None:
    """Pre-train a tiny RWKV-7.

    Pure PyTorch, on the state-tuning pattern task."""
    from tts.learn.rwkv7.train import pretrain

    if task != "pattern":
        fail(f"unknown RWKV-7 task '{task}' (tasks: pattern)")
    card = pretrain(out, steps=steps, seed=seed)
    typer.echo(f"saved {out}: {card['parameters']} parameters, {card['seconds']:.0f} s, in-context accuracy "
               f"{100 * card['in_context_accuracy']:.1f}%")


@learn_app.command("state")
def state(model: str = typer.Option("toy:rwkv7_pattern", help="an RWKV-7 model folder (tts_rwkv7), or toy:rwkv7_pattern"),
          bank: Path = typer.Option(..., help="state library folder; the tuned state is saved there as NAME"),
          name: str = typer.Option("pattern", help="name of the tuned state in the library"),
          rule_seed: int = typer.Option(1234, help="which hidden permutation (the task)"),
          steps: int = typer.Option(150), lr: float = typer.Option(1.0)) -> None:
    """Tune an RWKV-7 initial state.

    Learns only the initial state for the hidden-rule task and saves it to a library."""
    from tts.backends.base import BackendError
    from tts.backends.models import resolve_model
    from tts.learn.rwkv7.state_tuning import StateBank
    from tts.learn.rwkv7.train import tune

    try:
        from transformers import AutoModelForCausalLM

        from tts.learn.models import register

        register()
        net = AutoModelForCausalLM.from_pretrained(resolve_model(model)[0]).eval()
    except (BackendError, OSError, ValueError) as exc:
        fail(f"cannot load '{model}': {str(exc).splitlines()[0]}")
    if not hasattr(net.config, "head_size"):
        fail(f"'{model}' is not an RWKV-7 model (tts_rwkv7)")
    tuner, info = tune(net, rule_seed=rule_seed, steps=steps, lr=lr, progress=True)
    path = StateBank(bank).add(name, tuner, **info)
    typer.echo(f"saved {path}: loss {info['zero_state_loss']:.3f} (zero state) -> {info['tuned_loss']:.4f} "
               f"(×{info['loss_ratio']:.4f}); accuracy zero state {100 * info['zero_state']:.1f}%, tuned "
               f"{100 * info['tuned_accuracy']:.1f}%, table in the prefix {100 * info['table_prefix']:.1f}%")
