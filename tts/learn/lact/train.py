"""Training a small LaCT language model (`tts learn lact`) on multi-query associative recall, built on
accelerate (one process, or data-parallel under `accelerate launch`): fresh random episodes every step
(nothing to memorise; seeded per process), AdamW with warm-up and cosine decay, a progress bar,
checkpoints and `--resume`, the training's `learn` eFLOPs, a held-out evaluation (all answers, and
those outside the attention window), and a model folder the hf backend loads."""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class LaCTTrain:
    out: str | None = None
    steps: int = 1500
    batch: int = 32
    lr: float = 3e-3
    seed: int = 0
    hidden: int = 64
    layers: int = 2
    chunk_size: int = 64
    window: int = 32
    use_lact: bool = True
    use_momentum: bool = True
    use_muon: bool = False
    weight_norm: bool = True
    base_lr: float = 1e-2
    key_shift: bool = True
    intermediate_size: int | None = None  # None: 4·hidden (the SWA-only baseline widens it to match)
    eval_batches: int = 8  # × 32 episodes × 32 answers
    save_every: int = 500  # checkpoint (model, optimiser, schedule, episode stream) for --resume
    resume: bool = False


def config(s: LaCTTrain):
    from tts.learn.lact import recall
    from tts.learn.lact.model import LaCTConfig

    return LaCTConfig(vocab_size=recall.VOCAB, hidden_size=s.hidden, num_hidden_layers=s.layers,
                      num_attention_heads=2, num_fw_heads=2, intermediate_size=s.intermediate_size or 4 * s.hidden,
                      chunk_size=s.chunk_size, window=s.window, use_lact=s.use_lact, use_momentum=s.use_momentum,
                      use_muon=s.use_muon, weight_norm=s.weight_norm, base_lr=s.base_lr, key_shift=s.key_shift, pad_token_id=recall.PAD,
                      eos_token_id=recall.EOS, bos_token_id=recall.EOS)


def evaluate(model: Any, s: LaCTTrain, seed: int = 10_000) -> dict[str, float]:
    from tts.learn.lact import recall

    rng, tot = random.Random(seed), {"all": 0.0, "outside": 0.0, "outside_n": 0, "n": 0}
    model.eval()
    with torch.no_grad():
        for _ in range(s.eval_batches):
            b = recall.batch(rng, 32)
            acc = recall.accuracy(model(input_ids=b.input_ids.to(model.device)).logits.cpu(), b, s.window)
            tot["all"] += acc["all"] * acc["n"]
            tot["outside"] += acc["outside"] * acc["outside_n"]
            tot["outside_n"] += acc["outside_n"]
            tot["n"] += acc["n"]
    return {"all": tot["all"] / tot["n"], "outside": tot["outside"] / max(tot["outside_n"], 1),
            "answers": tot["n"], "outside_answers": tot["outside_n"]}


def train(s: LaCTTrain, progress: bool = True) -> tuple[Any, dict[str, Any]]:
    """Train; save to `s.out` when given. Returns the model and its card (eval included)."""
    from accelerate import Accelerator
    from tqdm import tqdm

    from tts.cost.model import KineticsCost, Usage
    from tts.cost.shape import ModelShape
    from tts.learn.lact import recall
    from tts.learn.lact.model import LaCTForCausalLM

    acc = Accelerator(cpu=not torch.cuda.is_available())
    torch.manual_seed(s.seed)  # the same initial model on every process
    rng = random.Random(s.seed if acc.num_processes == 1 else s.seed * 1000 + acc.process_index)
    model = LaCTForCausalLM(config(s))
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=0.01, betas=(0.9, 0.95))
    warm = max(1, s.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * (0.1 + 0.45 * (1 + math.cos(math.pi * min(i / s.steps, 1.0)))))
    start, ckpt = 0, Path(s.out) / "checkpoint.pt" if s.out else None
    if s.resume and ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"]), opt.load_state_dict(state["opt"]), sched.load_state_dict(state["sched"])
        rng.setstate(state["rng"])
        start = state["step"]
    model, opt = acc.prepare(model, opt)
    t0, losses, tokens = time.perf_counter(), [], 0
    bar = tqdm(range(start, s.steps), desc="lact training", unit="step", initial=start, total=s.steps,
               disable=not (progress and acc.is_main_process))
    model.train()
    for step in bar:
        b = recall.batch(rng, s.batch)
        tokens += b.input_ids.numel()
        loss = model(input_ids=b.input_ids.to(acc.device), labels=b.labels.to(acc.device)).loss
        opt.zero_grad()
        acc.backward(loss)
        acc.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if (ckpt is not None and acc.is_main_process and s.save_every and (step + 1) % s.save_every == 0
                and step + 1 < s.steps):
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": acc.unwrap_model(model).state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "rng": rng.getstate(), "step": step + 1}, ckpt)
    acc.wait_for_everyone()
    model = acc.unwrap_model(model)
    shape = ModelShape.from_hf_config(model.config, params=sum(p.numel() for p in model.parameters()))
    card = {**asdict(s), "parameters": sum(p.numel() for p in model.parameters()),
            "processes": acc.num_processes,
            "learn_eflops": KineticsCost()(shape, Usage("learn", tokens)) * acc.num_processes,
            "seconds": round(time.perf_counter() - t0, 1), "final_loss": sum(losses[-20:]) / min(20, len(losses)),
            "eval": evaluate(model, s), "chance": recall.CHANCE}
    if s.out and acc.is_main_process:
        out = Path(s.out)
        model.save_pretrained(out)
        recall.tokenizer(out)
        (out / "lact_card.json").write_text(json.dumps(card, indent=1))
        if ckpt is not None and ckpt.exists():
            ckpt.unlink()  # finished: the model folder is the result
    return model.eval(), card
