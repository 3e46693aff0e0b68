"""PERK: a LoRA adapter that encodes a context at test time (spec: perk.md; Chen et al., arXiv
2507.06415). The inner loop writes the context's segments into LoRA tensors with S optimiser
steps whose learning rates are learned per tensor and per step, on a token-weighted language-model
loss; the outer loop (meta-training) learns the adapter's initialisation, those learning rates and
the token-weighting net so that the adapted model answers questions *without* the context.

Functional (torch.func.functional_call over the peft model's LoRA tensors), so the outer loss can be
differentiated through the inner steps; only the last S − K steps are (truncated backpropagation,
`unroll_from` = K). Reconstruction where the spec says so: the inner optimiser is Adam-style
(bias-corrected, weight decay on non-bias tensors) or plain SGD for gradient checks; learning rates
are unconstrained, as in the reference."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from tts.types import RequestState


@dataclass(frozen=True)
class PERKConfig:
    rank: int = 8
    alpha: float = 16.0
    rslora: bool = True
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    inner_steps: int = 4
    unroll_from: int = 2  # K: steps before K use detached gradients (first order)
    inner_lr: float = 5e-5
    inner_optimizer: str = "adam"  # or "sgd"
    positive_lrs: bool = False  # learn log α (always positive; a documented deviation from the reference)
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.01
    weighted: bool = True
    beta: float = 3.0  # softplus sharpness of the token weights
    weight_hidden: int = 128


@dataclass
class Batch:
    """Token ids, attention mask and labels (−100 where no loss) of one row set."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_rows(cls, rows: list[tuple[list[int], list[int]]], pad: int = 0) -> "Batch":
        """rows: (ids, labels) pairs, right-padded to the longest."""
        width = max(len(ids) for ids, _ in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (x, y) in enumerate(rows):
            ids[i, : len(x)], labels[i, : len(y)], mask[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
        return cls(ids, mask, labels)

    def split(self, groups: int) -> list["Batch"]:
        idx = torch.arange(self.input_ids.shape[0]).chunk(groups)
        return [Batch(self.input_ids[i], self.attention_mask[i], self.labels[i]) for i in idx]


class TokenWeights(nn.Module):
    """w_t = softplus_β(g(h_t)), g = Linear → GELU → Linear with the last layer zero-initialised
    (so every weight starts at ln 2 / β)."""

    def __init__(self, hidden: int, width: int, beta: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, width), nn.GELU(), nn.Linear(width, 1))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)
        self.beta = beta

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.net(h).squeeze(-1), beta=self.beta)


class PERK(nn.Module):
    """Meta-learned LoRA initialisation φ0, per-tensor per-step learning rates α and token weights ψ
    around a frozen base model."""

    def __init__(self, base: nn.Module, config: PERKConfig | None = None) -> None:
        super().__init__()
        from peft import LoraConfig, get_peft_model

        self.config = cfg = config or PERKConfig()
        if cfg.inner_optimizer not in ("adam", "sgd"):
            raise ValueError(f"inner_optimizer must be adam or sgd, got '{cfg.inner_optimizer}'")
        if not 0 <= cfg.unroll_from <= cfg.inner_steps:
            raise ValueError("unroll_from must be between 0 and inner_steps")
        names = {n.rsplit(".", 1)[-1] for n, _ in base.named_modules()}
        targets = [t for t in cfg.target_modules if t in names]
        if not targets:
            raise ValueError(f"none of the LoRA targets {cfg.target_modules} is a module of {type(base).__name__}")
        conv1d = any(type(m).__name__ == "Conv1D" for n, m in base.named_modules() if n.rsplit(".", 1)[-1] in targets)
        lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=0.0, target_modules=targets,
                          use_rslora=cfg.rslora, init_lora_weights=True, fan_in_fan_out=conv1d)  # GPT-2's Conv1D
        self.model = get_peft_model(base, lora)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.names = [n for n, _ in self.model.named_parameters() if "lora_" in n]
        self.init = nn.ParameterList([nn.Parameter(dict(self.model.named_parameters())[n].detach().clone())
                                      for n in self.names])
        start = torch.full((len(self.names), cfg.inner_steps), cfg.inner_lr)
        self.lrs = nn.Parameter(start.log() if cfg.positive_lrs else start)
        hidden = base.config.hidden_size
        self.weights = TokenWeights(hidden, cfg.weight_hidden, cfg.beta)
        self.serving_base = False

    # -- forward passes ------------------------------------------------------------------------
    def serve_base(self, on: bool = True) -> None:
        """Adapter layers off (`on`) or on: a backend serving this checkpoint serves its base model,
        and only a request carrying adapted tensors (`AdaptedLoRA`) turns them on for itself."""
        layers = self.model.base_model
        (layers.disable_adapter_layers if on else layers.enable_adapter_layers)()
        self.serving_base = on

    @contextmanager
    def adapters_on(self) -> Iterator[None]:
        """The adapter layers on for the block (functional LoRA tensors take effect), restored after."""
        if not self.serving_base:
            yield
            return
        self.serve_base(False)
        try:
            yield
        finally:
            self.serve_base(True)

    def _run(self, params: dict[str, torch.Tensor], batch: Batch, hidden: bool = False) -> Any:
        with self.adapters_on():
            return functional_call(self.model, params, (), {"input_ids": batch.input_ids,
                                                            "attention_mask": batch.attention_mask,
                                                            "output_hidden_states": hidden})

    def initial(self) -> dict[str, torch.Tensor]:
        """φ0 as a name → tensor dict (the meta-learned parameters themselves: never mutated)."""
        return dict(zip(self.names, self.init))

    def inner_loss(self, params: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        """Token-weighted causal LM loss over the segments (the weight of the loss predicting x_{t+1}
        comes from the hidden state at t+1); the mean divides by every position, as the reference."""
        out = self._run(params, batch, hidden=self.config.weighted)
        labels = batch.labels[:, 1:]
        ce = _next_token_ce(out.logits, batch.labels, "none").view_as(labels)
        if not self.config.weighted:
            return ce.sum() / (labels != -100).sum().clamp_min(1)
        w = self.weights(out.hidden_states[-1][:, 1:].to(self.weights.net[0].weight.dtype))
        return (w * ce).sum() / labels.numel()

    def outer_loss(self, params: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        """Cross-entropy of the answer tokens given the query prompt (no context in it)."""
        return _next_token_ce(self._run(params, batch).logits, batch.labels, "mean")

    # -- the inner loop ------------------------------------------------------------------------
    def adapt(self, batch: Batch, differentiable: bool = True, groups: int = 1,
              losses: list[float] | None = None) -> dict[str, torch.Tensor]:
        """φ_S after S inner steps on `batch`; steps s ≥ unroll_from are differentiated through when
        `differentiable` (meta-training). `groups` > 1 accumulates the full-batch gradient in parts."""
        cfg = self.config
        params = self.initial()
        m = {n: torch.zeros_like(p) for n, p in params.items()}
        v = {n: torch.zeros_like(p) for n, p in params.items()}
        b1, b2 = cfg.betas
        for s in range(cfg.inner_steps):
            second = differentiable and s >= cfg.unroll_from
            grads, loss_value = self._grads(params, batch, groups, second)
            if losses is not None:
                losses.append(loss_value)
            new = {}
            for i, (name, p) in enumerate(params.items()):
                g = grads[name]
                lr = self.rate(i, s) if differentiable else self.rate(i, s).detach()
                if cfg.inner_optimizer == "sgd":
                    new[name] = p - lr * g
                    continue
                m[name] = b1 * m[name] + (1 - b1) * g
                v[name] = b2 * v[name] + (1 - b2) * g * g
                step = (m[name] / (1 - b1 ** (s + 1))) / ((v[name] / (1 - b2 ** (s + 1))).sqrt() + 1e-8)
                decay = cfg.weight_decay * p if "bias" not in name else 0.0
                new[name] = p - lr * (step + decay)
            params = new
        return params if differentiable else {n: p.detach() for n, p in params.items()}

    def rate(self, i: int, s: int) -> torch.Tensor:
        """α for tensor i at step s (exp of the learned value when `positive_lrs`)."""
        return self.lrs[i, s].exp() if self.config.positive_lrs else self.lrs[i, s]

    def _grads(self, params: dict[str, torch.Tensor], batch: Batch, groups: int,
               second: bool) -> tuple[dict[str, torch.Tensor], float]:
        """∇ of the inner loss (accumulated over `groups` parts, each divided by `groups`)."""
        names, tensors = list(params), list(params.values())
        if not second:  # a first-order step: the update depends on α but not on second derivatives
            tensors = [t.detach().requires_grad_(True) for t in tensors]
        total = [torch.zeros_like(t) for t in tensors]
        value = 0.0
        for part in (batch.split(groups) if groups > 1 else [batch]):
            loss = self.inner_loss(dict(zip(names, tensors)), part) / groups
            gs = torch.autograd.grad(loss, tensors, create_graph=second, allow_unused=True)
            total = [a + (g if g is not None else torch.zeros_like(a)) for a, g in zip(total, gs)]
            value += float(loss.detach())
        if not second:
            total = [g.detach() for g in total]
        return dict(zip(names, total)), value

    # -- outer step and test time --------------------------------------------------------------
    def meta_loss(self, context: Batch, query: Batch) -> tuple[torch.Tensor, list[float]]:
        """Outer loss after adapting to the context; backward reaches φ0, α and ψ."""
        inner: list[float] = []
        params = self.adapt(context, differentiable=True, losses=inner)
        return self.outer_loss(params, query), inner

    @torch.no_grad()
    def answer_logits(self, params: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        return self._run(params, batch).logits

    def encode(self, context: Batch, groups: int = 1) -> dict[str, torch.Tensor]:
        """Test time: the adapted LoRA tensors for one context (detached; φ0 untouched)."""
        with torch.enable_grad():
            return self.adapt(context, differentiable=False, groups=groups)

    def export_lora(self, params: dict[str, torch.Tensor], path: str) -> None:
        """Save the adapted adapter with peft (loadable by vLLM's LoRA support)."""
        with torch.no_grad():
            live = dict(self.model.named_parameters())
            saved = {n: live[n].detach().clone() for n in self.names}
            for n, t in params.items():
                live[n].copy_(t)
            try:
                self.model.save_pretrained(path)
            finally:
                for n, t in saved.items():
                    live[n].copy_(t)


class AdaptedLoRA(RequestState):
    """Adapted LoRA tensors as per-request model state (`request_state`): the request's forward
    passes run the checkpoint's model with these tensors (functional_call) and its adapter layers
    on; every other request keeps seeing the base. Decoding — sampler, seeding, cache — is the backend's."""

    def __init__(self, perk: PERK, params: dict[str, torch.Tensor]) -> None:
        self.perk, self.params = perk, params

    def begin_row(self, model: Any, prompt_ids: list[int], row: int) -> None:
        if model is not self.perk.model:
            raise ValueError("AdaptedLoRA: the backend does not serve this PERK checkpoint's model")
        if self.perk.serving_base:
            self.perk.serve_base(False)

    def forward(self, model: Any, inputs: dict[str, Any]) -> Any:
        return functional_call(model, self.params, (), inputs)

    def end_row(self, model: Any, row: int) -> None:
        self.perk.serve_base(True)


def _next_token_ce(logits: torch.Tensor, labels: torch.Tensor, reduction: str) -> torch.Tensor:
    """Cross-entropy of each next token (−100 labels ignored), in at least float32."""
    logits = logits[:, :-1]
    logits = logits.reshape(-1, logits.shape[-1]).to(torch.promote_types(logits.dtype, torch.float32))
    return F.cross_entropy(logits, labels[:, 1:].reshape(-1), ignore_index=-100, reduction=reduction)


__all__ = ["AdaptedLoRA", "Batch", "PERK", "PERKConfig", "TokenWeights"]
