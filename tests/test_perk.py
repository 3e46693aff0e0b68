"""PERK's inner and outer loops on a tiny GPT-2 in float64: the meta-gradient against finite
differences, truncation semantics, gradient accumulation, episode isolation, the inner loss
falling. (The key-value recall benchmark and `tts learn perk` are not built yet.)"""

from __future__ import annotations

import pytest
import torch

from tts.learn.perk import PERK, Batch, PERKConfig

VOCAB = 40


def tiny_base(seed: int = 0):
    """GPT-2 shaped: its LayerNorm and attention stay in float64 (Llama's RMSNorm and eager
    softmax round through float32, which would cap a finite-difference check)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation="eager")
    return GPT2LMHeadModel(config).double().eval()


def make(seed: int = 0, **changes) -> PERK:
    settings = dict(rank=4, alpha=8.0, target_modules=("c_attn", "c_fc"), inner_steps=2, unroll_from=0,
                    inner_lr=0.05, inner_optimizer="sgd", weight_hidden=8)
    cfg = PERKConfig(**{**settings, **changes})
    perk = PERK(tiny_base(seed), cfg).double()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # a non-zero φ0 (peft starts B at zero, which would hide A's gradient)
        for p in perk.init:
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.2)
        for p in perk.weights.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)
    return perk


def context(seed: int = 0, rows: int = 4) -> Batch:
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(3, VOCAB, (7,), generator=g).tolist() for _ in range(rows)]
    return Batch.from_rows([(s, [-100] + s[1:]) for s in seqs])


def query(seed: int = 9) -> Batch:
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(3, VOCAB, (6,), generator=g).tolist()
    return Batch.from_rows([(q, [-100] * 4 + q[4:])])


def test_meta_gradient_matches_finite_differences():
    perk = make()
    ctx, qry = context(), query()
    loss, _ = perk.meta_loss(ctx, qry)
    loss.backward()
    checks = [(perk.init[0], (0, 1)), (perk.init[3], (1, 0)), (perk.lrs, (2, 1)), (perk.lrs, (0, 0)),
              (perk.weights.net[0].weight, (1, 2))]
    eps = 1e-6
    for tensor, index in checks:
        analytic = tensor.grad[index].item()
        def shift(by: float) -> None:
            with torch.no_grad():
                tensor[index] += by

        shift(eps)
        plus = float(perk.meta_loss(ctx, qry)[0].detach())
        shift(-2 * eps)
        minus = float(perk.meta_loss(ctx, qry)[0].detach())
        shift(eps)
        assert analytic == pytest.approx((plus - minus) / (2 * eps), rel=1e-5, abs=1e-10)


def test_truncation_semantics():
    ctx, qry = context(), query()
    # K = S: every inner step detached -> dL/dφ0 is the first-order gradient at φ_S, ψ gets nothing
    first = make(unroll_from=2)
    loss, _ = first.meta_loss(ctx, qry)
    loss.backward()
    phi_s = {n: t.detach().requires_grad_(True) for n, t in first.adapt(ctx, differentiable=False).items()}
    fomaml = torch.autograd.grad(first.outer_loss(phi_s, qry), list(phi_s.values()))
    for p, g in zip(first.init, fomaml):
        assert torch.allclose(p.grad, g, rtol=1e-10, atol=1e-14)
    assert all(p.grad is None or torch.all(p.grad == 0) for p in first.weights.parameters())
    assert first.lrs.grad.abs().sum() > 0  # the update still depends on α
    # K = 0 differs from K = S (second-order terms) and reaches ψ
    full = make(unroll_from=0)
    loss, _ = full.meta_loss(ctx, qry)
    loss.backward()
    assert not torch.allclose(full.init[0].grad, first.init[0].grad)
    assert full.weights.net[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_accumulated_inner_step_equals_full_batch(optimizer):
    perk = make(inner_optimizer=optimizer)
    ctx = context(rows=4)
    one = perk.encode(ctx, groups=1)
    two = perk.encode(ctx, groups=2)
    for n in one:
        assert torch.allclose(one[n], two[n], rtol=0, atol=1e-10)


def test_episodes_are_isolated():
    perk = make()
    a, b, qry = context(1), context(2), query()
    before = [p.detach().clone() for p in perk.init]
    alone = perk.answer_logits(perk.encode(b), qry)
    perk.encode(a)
    after_a = perk.answer_logits(perk.encode(b), qry)
    assert torch.equal(alone, after_a)
    assert all(torch.equal(x, y) for x, y in zip(before, perk.init))


def test_inner_loss_falls():
    perk = make(inner_optimizer="adam", inner_lr=0.02)
    losses: list[float] = []
    perk.adapt(context(3), differentiable=False, losses=losses)
    params = perk.encode(context(3))
    after = float(perk.inner_loss(params, context(3)).detach())
    assert after < losses[0]
