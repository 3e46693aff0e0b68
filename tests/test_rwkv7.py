"""RWKV-7 (spec rwkv7-state-tuning.md): recurrent = chunked WKV in float64, prefix = state, gradients
w.r.t. the initial state by gradcheck, long-run stability, both checkpoint layouts, decoding through
the hf backend, and state tuning (a state bank picking the right state)."""

from __future__ import annotations

import random

import pytest
import torch

from tts.learn.rwkv7.wkv import chunked, recurrent


def _wkv_inputs(b=2, t=37, h=3, n=8, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    r, k, v = (torch.randn(b, t, h, n, generator=g, dtype=dtype) for _ in range(3))
    d = torch.rand(b, t, h, n, generator=g, dtype=dtype) * (1 - 0.545) + 0.545
    kap = torch.randn(b, t, h, n, generator=g, dtype=dtype)
    kap = kap / kap.norm(dim=-1, keepdim=True)
    a = torch.rand(b, t, h, n, generator=g, dtype=dtype)
    s0 = torch.randn(b, h, n, n, generator=g, dtype=dtype)
    return r, d.log(), k, v, -kap, kap * a, s0


def _model(seed=0, **kw):
    from tts.learn.rwkv7.model import RWKV7Config, RWKV7ForCausalLM

    torch.manual_seed(seed)
    cfg = dict(vocab_size=40, hidden_size=32, head_size=8, num_hidden_layers=2, decay_low_rank=8, a_low_rank=8,
               v_low_rank=4, gate_low_rank=8)
    cfg.update(kw)
    return RWKV7ForCausalLM(RWKV7Config(**cfg)).eval()


@pytest.mark.parametrize("chunk", [8, 16])
def test_chunked_equals_recurrent_and_splits_carry_state(chunk):
    args = _wkv_inputs()
    o1, s1 = recurrent(*args)
    o2, s2 = chunked(*args, chunk=chunk)
    assert (o1 - o2).abs().max() < 1e-10 and (s1 - s2).abs().max() < 1e-10
    r, logd, k, v, al, be, s0 = args
    cut = 13
    oa, sa = chunked(r[:, :cut], logd[:, :cut], k[:, :cut], v[:, :cut], al[:, :cut], be[:, :cut], s0, chunk=chunk)
    ob, sb = chunked(r[:, cut:], logd[:, cut:], k[:, cut:], v[:, cut:], al[:, cut:], be[:, cut:], sa, chunk=chunk)
    assert (torch.cat([oa, ob], 1) - o1).abs().max() < 1e-10 and (sb - s1).abs().max() < 1e-10


def test_model_kernels_agree_and_prefix_is_state():
    model = _model().double()
    x = torch.randint(0, 40, (2, 30))
    model.config.kernel = "recurrent"
    ref = model(input_ids=x).logits
    model.config.kernel = "chunked"
    full = model(input_ids=x)
    assert (full.logits - ref).abs().max() < 1e-10
    prefix = model(input_ids=x[:, :11])
    rest = model(input_ids=x[:, 11:], past_key_values=prefix.past_key_values)
    assert (rest.logits - full.logits[:, 11:]).abs().max() < 1e-10  # the full state reproduces p‖x
    zeroed = prefix.past_key_values
    zeroed.att_shift = [torch.zeros_like(t) for t in zeroed.att_shift]
    zeroed.ffn_shift = [torch.zeros_like(t) for t in zeroed.ffn_shift]
    partial = model(input_ids=x[:, 11:], past_key_values=zeroed).logits
    assert (partial[:, 0] - full.logits[:, 11]).abs().max() > 1e-6  # the shift reaches only the first position
    # ... and the wkv state carries on; with the transposed (key-major) state the continuation breaks
    broken = model(input_ids=x[:, :11]).past_key_values
    broken.wkv = [s.transpose(-2, -1) for s in broken.wkv]
    assert (model(input_ids=x[:, 11:], past_key_values=broken).logits - full.logits[:, 11:]).abs().max() > 1e-6


def test_gradcheck_with_respect_to_the_state_and_inputs():
    args = [t.detach().requires_grad_(True) for t in _wkv_inputs(b=1, t=6, h=1, n=4, seed=3)]
    for kernel in (recurrent, lambda *a: chunked(*a, chunk=4)):
        def f(*a):
            o, s = kernel(*a)
            return o.sum() + (s ** 2).sum()

        assert torch.autograd.gradcheck(f, tuple(args), eps=1e-6, atol=1e-6)


def test_state_stays_bounded_over_ten_thousand_steps():
    r, logd, k, v, al, be, _ = _wkv_inputs(b=1, t=10_000, h=2, n=8, seed=5)
    k, v = k / 8 ** 0.5, v / 8 ** 0.5
    s = torch.zeros(1, 2, 8, 8, dtype=torch.float64)
    norms = []
    for c in range(0, 10_000, 500):
        sl = slice(c, c + 500)
        _, s = chunked(r[:, sl], logd[:, sl], k[:, sl], v[:, sl], al[:, sl], be[:, sl], s, chunk=16)
        norms.append(float(s.norm()))
    assert all(torch.isfinite(torch.tensor(norms))) and max(norms) < 100
    assert max(norms[10:]) < 2 * max(norms[:10])  # no growth trend


def test_official_and_fla_layouts_load_to_the_same_model(tmp_path):
    from safetensors.torch import save_file

    from tts.learn.rwkv7.convert import load_fla, load_official, to_fla

    model = _model(seed=7, decay_low_rank=12, v_low_rank=6)
    with torch.no_grad():  # give the zero-initialised maps values, so a wrong transpose or name shows
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    x = torch.randint(0, 40, (1, 20))
    want = model(input_ids=x).logits
    torch.save(model.state_dict(), tmp_path / "rwkv7.pth")
    assert (load_official(tmp_path / "rwkv7.pth")(input_ids=x).logits - want).abs().max() < 1e-6
    sd, config = to_fla(model)
    (tmp_path / "fla").mkdir()
    save_file(sd, tmp_path / "fla" / "model.safetensors")
    import json

    (tmp_path / "fla" / "config.json").write_text(json.dumps(config))
    loaded = load_fla(tmp_path / "fla")
    assert (loaded(input_ids=x).logits - want).abs().max() < 1e-6
    assert sd["model.layers.1.attn.w_lora.lora.0.weight"].shape == (12, 32)  # Linear(C → rank)
    assert sd["model.layers.1.attn.v_lora.lora.2.bias"].shape == (32,)
    with pytest.raises(ValueError, match="not a flash-linear-attention"):
        (tmp_path / "fla" / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
        load_fla(tmp_path / "fla")


async def test_generates_through_the_hf_backend(tmp_path):
    from tts.backends.hf import HFBackend
    from tts.learn.rwkv7 import pattern
    from tts.types import Sampling

    model = _model(vocab_size=pattern.VOCAB)
    model.save_pretrained(tmp_path / "m")
    pattern.tokenizer(tmp_path / "m")
    backend = HFBackend(str(tmp_path / "m"), dtype="float32")
    await backend.start()
    try:
        prompt = backend.tokenizer("s1 t2 s3 t4 | s1", add_special_tokens=False)["input_ids"]
        gen = await backend.generate(prompt, Sampling(temperature=0.0, max_tokens=6))
        seq = list(prompt)
        with torch.no_grad():
            for _ in range(6):
                seq.append(int(model(input_ids=torch.tensor([seq])).logits[0, -1].argmax()))
        assert gen.completions[0].token_ids == seq[len(prompt):]
    finally:
        await backend.close()


def test_state_tuning_moves_only_the_state_and_the_bank_picks_the_right_one(tmp_path):
    """On a random frozen model (the spec's quick variant): tuning S0 on table-free sequences of a hidden
    permutation cuts the loss well below the zero state's; weights never change; a bank holding the
    states of two different rules picks the matching one."""
    from tts.learn.rwkv7 import pattern
    from tts.learn.rwkv7.state_tuning import StateBank, StateTuner, TuneSettings

    model = _model(vocab_size=pattern.VOCAB, hidden_size=32, head_size=8)
    before = {n: p.clone() for n, p in model.state_dict().items()}
    rng = random.Random(0)
    banks = StateBank(tmp_path / "bank")
    losses = {}
    for name, seed in (("rule_a", 1), ("rule_b", 2)):
        perm = pattern.secret(seed)
        data = [(r.input_ids, r.labels) for r in (pattern.rows(rng, 8, 8, perm, table=False) for _ in range(4))]
        tuner = StateTuner(model)
        zero = tuner.evaluate(data)
        fit = tuner.fit(data, TuneSettings(steps=60, lr=0.5))
        losses[name] = (zero, tuner.evaluate(data), fit)
        banks.add(name, tuner, final_loss=fit[-1])
    for zero, tuned, _ in losses.values():
        assert tuned < 0.8 * zero, losses
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items())
    perm = pattern.secret(2)
    probe = [(r.input_ids, r.labels) for r in (pattern.rows(random.Random(9), 8, 8, perm, table=False),)]
    name, _, scores = banks.pick(model, probe)
    assert name == "rule_b", scores
