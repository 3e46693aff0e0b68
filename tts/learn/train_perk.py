"""Meta-training PERK (`tts learn perk`), built on accelerate: seeded episodes per process, one
meta-gradient per process averaged by hand (DistributedDataParallel cannot wrap a loss built with
`create_graph=True`), checkpoints that `--resume` continues from, a progress bar on the main
process, and a ledger of `learn` calls (one per optimiser step) priced by the cost model.

Task `kv_recall` (tts.learn.recall_task): the base is a tiny GPT-2 built here and pre-trained on
the task's format (stated in the card), unless `--base` names a model folder."""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from tts.learn.perk import PERK, PERKConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    out: str
    steps: int = 600
    outer_lr: float = 3e-4
    pretrain_steps: int = 600
    seed: int = 0
    save_every: int = 200
    base: str | None = None
    resume: bool = False
    eval_every: int = 100  # validation accuracy every so many steps; the best meta-parameters are kept
    eval_episodes: int = 50


def _params(perk: PERK) -> list[torch.nn.Parameter]:
    return [p for p in perk.parameters() if p.requires_grad]


def _all_reduce(acc: Any, params: list[torch.nn.Parameter]) -> None:
    """Average the meta-gradients over processes (a hand all-reduce)."""
    if acc.num_processes == 1:
        return
    for p in params:
        grad = p.grad if p.grad is not None else torch.zeros_like(p)
        p.grad = acc.reduce(grad.contiguous(), reduction="mean")


def build(settings: TrainSettings, config: PERKConfig, main: bool = True) -> tuple[PERK, dict[str, Any]]:
    """The PERK around its base; a base built here is saved (with the task's tokenizer) as `OUT/base`,
    a model folder that backends load (the `perk` generator's answering role)."""
    from tts.learn import recall_task as task

    card: dict[str, Any] = {"task": "kv_recall"}
    if settings.base:
        from transformers import AutoModelForCausalLM

        base = AutoModelForCausalLM.from_pretrained(settings.base, attn_implementation="eager")
        card["base"] = settings.base
    else:
        base = task.tiny_gpt2(settings.seed)
        losses = task.pretrain_base(base, settings.pretrain_steps, seed=settings.seed)
        card.update(base="tiny-gpt2 (built here)", pretrain_steps=settings.pretrain_steps,
                    pretrain_final_loss=losses[-1] if losses else None)
        if main:
            base.save_pretrained(Path(settings.out) / "base")
            task.tokenizer(Path(settings.out) / "base")
    return PERK(base, config), card


def train(settings: TrainSettings, config: PERKConfig) -> dict[str, Any]:
    """Meta-train and save `perk.pt` (φ0, α, ψ, base weights), `config.json`, `card.json`."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from tts.cost.model import KineticsCost, Usage
    from tts.cost.shape import ModelShape
    from tts.learn import recall_task as task

    acc = Accelerator(cpu=not torch.cuda.is_available())
    set_seed(settings.seed)  # the same base and φ0 on every process
    out = Path(settings.out)
    perk, card = build(settings, config, acc.is_main_process)
    opt = torch.optim.AdamW(_params(perk), lr=settings.outer_lr, betas=(0.9, 0.95), weight_decay=0.0)
    start = 0
    ckpt = out / "checkpoint"
    if settings.resume and (ckpt / "state.pt").exists():
        state = torch.load(ckpt / "state.pt", weights_only=False)
        perk.load_state_dict(state["perk"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
        log.info("resuming at step %d", start)
    history = _history(out, start) if start else []
    shape = ModelShape.from_hf_config(perk.model.base_model.model.config)
    cost, t0 = KineticsCost(), time.perf_counter()
    learn_eflops = json.loads((out / "card.json").read_text()).get("learn_eflops", 0.0) if start else 0.0
    bar = _progress(acc, settings.steps, start)
    for step in range(start, settings.steps):
        rng = random.Random(hash((settings.seed, step, acc.process_index)) & 0xFFFFFFFF)
        ep = task.episode(rng)
        loss, inner = perk.meta_loss(ep.context(), ep.questions())
        opt.zero_grad()
        loss.backward()
        _all_reduce(acc, _params(perk))
        torch.nn.utils.clip_grad_norm_(_params(perk), 1.0)
        opt.step()
        tokens = int(ep.context().attention_mask.sum()) * config.inner_steps + int(ep.questions().attention_mask.sum())
        learn_eflops += cost(shape, Usage("learn", tokens)) * acc.num_processes
        history.append({"step": step + 1, "outer_loss": float(loss.detach()), "inner_loss": inner})
        if bar is not None:
            bar.update(1)
        if acc.is_main_process and settings.eval_every and (step + 1) % settings.eval_every == 0:
            score = validate(perk, settings.eval_episodes)
            history[-1]["val_accuracy"] = score
            if score > card.get("best_val_accuracy", -1.0):
                card.update(best_val_accuracy=score, best_step=step + 1)
                out.mkdir(parents=True, exist_ok=True)
                torch.save(perk.state_dict(), out / "best.pt")
        if acc.is_main_process and ((step + 1) % settings.save_every == 0 or step + 1 == settings.steps):
            _save(perk, opt, step + 1, out, config, card, history, learn_eflops)
    if bar is not None:
        bar.close()
    acc.wait_for_everyone()
    # every process must hold the same meta-parameters after averaged updates (the all-reduce works)
    checksum = torch.stack([sum(p.detach().double().sum() for p in _params(perk))]).to(acc.device)
    sums = acc.gather(checksum).tolist() if acc.num_processes > 1 else checksum.tolist()
    summary = {"steps": settings.steps, "processes": acc.num_processes, "seconds": time.perf_counter() - t0,
               "learn_eflops": learn_eflops, "final_outer_loss": history[-1]["outer_loss"] if history else None,
               "param_checksums": sums}
    if acc.is_main_process:
        (out / "train.json").write_text(json.dumps(summary, indent=1))
    return summary


def validate(perk: PERK, episodes: int, seed: int = 10_000) -> float:
    """Answer accuracy on fixed validation episodes (never the benchmark's held-out set)."""
    from tts.learn import recall_task as task

    total = 0.0
    for i in range(episodes):
        ep = task.episode(random.Random(seed + i), shuffle_ids=False)
        q = ep.questions()
        total += task.answer_accuracy(perk.answer_logits(perk.encode(ep.context()), q), q)
    return total / episodes


def _history(out: Path, upto: int) -> list[dict]:
    """The saved history up to a checkpoint's step (a resumed run appends to it)."""
    path = out / "history.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    return [r for r in rows if r["step"] <= upto]


def _progress(acc: Any, total: int, start: int) -> Any:
    if not acc.is_main_process:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc="perk meta-training", unit="step")


def _save(perk: PERK, opt: Any, step: int, out: Path, config: PERKConfig, card: dict, history: list,
          learn_eflops: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoint").mkdir(exist_ok=True)
    torch.save({"perk": perk.state_dict(), "opt": opt.state_dict(), "step": step}, out / "checkpoint" / "state.pt")
    torch.save(perk.state_dict(), out / "perk.pt")
    (out / "config.json").write_text(json.dumps(asdict(config), indent=1))
    (out / "card.json").write_text(json.dumps({**card, "meta_steps": step, "learn_eflops": learn_eflops}, indent=1))
    with (out / "history.jsonl").open("w") as fh:
        for row in history:
            fh.write(json.dumps(row) + "\n")


def load(folder: str | Path, best: bool = True, device: str = "cpu") -> PERK:
    """A trained PERK: the base (`OUT/base` when built here, else the folder it was trained on), then
    the meta-parameters with the best validation accuracy when there are some, else the last."""
    from transformers import AutoModelForCausalLM

    folder = Path(folder)
    if not (folder / "config.json").exists() or not (folder / "perk.pt").exists():
        raise FileNotFoundError(f"{folder} is not a PERK checkpoint (no config.json and perk.pt; make one with "
                                f"`tts learn perk --out {folder}`)")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["target_modules"], cfg["betas"] = tuple(cfg["target_modules"]), tuple(cfg["betas"])
    card = json.loads((folder / "card.json").read_text())
    source = folder / "base" if (folder / "base").exists() else card["base"]
    base = AutoModelForCausalLM.from_pretrained(source, attn_implementation="eager")
    perk = PERK(base, PERKConfig(**cfg))
    weights = folder / "best.pt" if best and (folder / "best.pt").exists() else folder / "perk.pt"
    perk.load_state_dict(torch.load(weights, weights_only=False, map_location="cpu"))
    return perk.to(device).eval()


def open_checkpoint(folder: str, device: str) -> Any:
    """A PERK checkpoint opened for a backend (the `checkpoints` registry's `perk` entry): one copy of
    its base with the meta-learned adapter around it, served as the base (adapter layers off); a
    lease hands out the PERK wrapper, which encodes contexts into adapted tensors. None when
    `folder` is not a PERK checkpoint."""
    from transformers import AutoTokenizer

    from tts.backends.hf_load import Loaded

    path = Path(folder)
    if not (path / "perk.pt").is_file() or not (path / "config.json").is_file():
        return None
    perk = load(path, device=device)
    perk.serve_base(True)
    card = json.loads((path / "card.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(path / "base" if (path / "base").exists() else card["base"])
    return Loaded(perk.model, tokenizer, owner=perk)
