"""State tuning (spec rwkv7-state-tuning.md §2, §6): a frozen RWKV-7 adapts to a task through its
initial per-layer, per-head WKV state S0 alone (shift states stay zero, as in the community recipe);
Adam with betas (0.9, 0.99), lr decayed from `lr` to `lr_final` after a short warm-up — large rates
are normal for raw state entries. A `StateBank` keeps tuned states by name and picks, per request,
the one with the lowest loss on the request's own examples (the test-time knob). The paper's
observer, kernel upscaling and DBP are not public code and are not implemented."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn.functional as F

from tts.learn.rwkv7.model import RWKV7State
from tts.types import RequestState


@dataclass(frozen=True)
class TuneSettings:
    steps: int = 200
    lr: float = 1.0
    lr_final: float = 1e-2
    warmup: int = 10
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-8


class StateTuner:
    """Owns S0 [layers, H, N, N] (float32, zeros); every model weight stays frozen."""

    def __init__(self, model: Any, init: torch.Tensor | None = None) -> None:
        c = model.config
        self.model = model
        shape = (c.num_hidden_layers, c.num_attention_heads, c.head_size, c.head_size)
        device = next(model.parameters()).device
        start = init.detach().clone().float() if init is not None else torch.zeros(shape)
        if tuple(start.shape) != shape:
            raise ValueError(f"state of shape {tuple(start.shape)} does not fit this model ({shape})")
        self.s0 = torch.nn.Parameter(start.to(device))

    def state(self, batch: int) -> RWKV7State:
        """The initial state for `batch` rows: zero shifts, wkv = S0."""
        zero = RWKV7State.zeros(self.model.config, batch, self.s0.device, next(self.model.parameters()).dtype)
        zero.wkv = [s.expand(batch, -1, -1, -1).to(w.dtype) for s, w in zip(self.s0, zero.wkv)]
        return zero

    def loss(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids, past_key_values=self.state(input_ids.shape[0]))
        return F.cross_entropy(out.logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100)

    def fit(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], settings: TuneSettings = TuneSettings(),
            progress: bool = False) -> list[float]:
        """Adam on S0 over `settings.steps` batches (cycled); returns the losses."""
        for p in self.model.parameters():
            p.requires_grad_(False)
        opt = torch.optim.Adam([self.s0], lr=settings.lr, betas=settings.betas, eps=settings.eps)
        decay = math.log(settings.lr_final / settings.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / max(settings.warmup, 1))
                                                  * math.exp(decay * i / max(settings.steps - 1, 1)))
        data, losses = list(batches), []
        from tqdm import tqdm

        for i in tqdm(range(settings.steps), desc="state tuning", unit="step", disable=not progress):
            ids, labels = data[i % len(data)]
            loss = self.loss(ids.to(self.s0.device), labels.to(self.s0.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        return losses

    @torch.no_grad()
    def evaluate(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
        vals = [float(self.loss(i.to(self.s0.device), lab.to(self.s0.device))) for i, lab in batches]
        return sum(vals) / max(len(vals), 1)

    def save(self, path: str | Path, **meta: Any) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"s0": self.s0.detach().cpu(), "meta": meta}, path)


def load_state(path: str | Path) -> tuple[torch.Tensor, dict[str, Any]]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    return blob["s0"], blob.get("meta", {})


class StateBank:
    """Tuned states saved as `NAME.state.pt` in a folder (with an index.json of their metadata)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def names(self) -> list[str]:
        return sorted(p.name[: -len(".state.pt")] for p in self.folder.glob("*.state.pt"))

    def add(self, name: str, tuner: StateTuner, **meta: Any) -> Path:
        path = self.folder / f"{name}.state.pt"
        tuner.save(path, name=name, **meta)
        index = self.folder / "index.json"
        rows = json.loads(index.read_text()) if index.exists() else {}
        rows[name] = meta
        index.write_text(json.dumps(rows, indent=1))
        return path

    def pick(self, model: Any, examples: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[str, torch.Tensor, dict]:
        """The saved state with the lowest loss on `examples`; (name, S0, {name: loss})."""
        names = self.names()
        if not names:
            raise FileNotFoundError(f"state library {self.folder} holds no *.state.pt")
        losses = {}
        for name in names:
            s0, _ = load_state(self.folder / f"{name}.state.pt")
            losses[name] = StateTuner(model, s0).evaluate(examples)
        best = min(losses, key=losses.get)
        return best, load_state(self.folder / f"{best}.state.pt")[0], losses


class TunedState(RequestState):
    """A tuned S0 as per-request model state (`request_state`): the request's prefill starts from it
    (rows share that prefill, copied per row); decoding is the backend's."""

    def __init__(self, tuner: StateTuner) -> None:
        self.tuner = tuner

    def initial_cache(self, model: Any) -> RWKV7State:
        if model is not self.tuner.model:
            raise ValueError("TunedState: the backend does not serve the model this state was tuned on")
        return self.tuner.state(1)


__all__ = ["StateBank", "StateTuner", "TuneSettings", "TunedState", "load_state"]
