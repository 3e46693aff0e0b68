"""RWKV-7's WKV operator, the generalised delta rule (spec rwkv7-state-tuning.md §1), in the
RWKV-LM state layout S [B, H, N_value, N_key]:

    S_t = S_{t−1} (diag(d_t) + α_t β_tᵀ) + v_t k_tᵀ,   o_t = S_t r_t,   α = −κ̂, β = κ̂ ⊙ a.

Three back-ends with one signature, inputs [B, T, H, N] and a log-decay `logd` (= log d_t < 0):
`recurrent` (the token loop: the reference), `chunked` (the spec's closed form per chunk, pure
PyTorch; the fast CPU path) and `fla` (flash-linear-attention's Triton kernel on a GPU, state
transposed to its [B, H, K, V] layout)."""

from __future__ import annotations

from typing import Callable

import torch

Kernel = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def recurrent(r, logd, k, v, alpha, beta, state, chunk: int | None = None):
    """The reference: one token at a time. Returns (o [B, T, H, N], final state)."""
    s = state
    d = logd.exp()
    out = []
    for t in range(r.shape[1]):
        s = (s * d[:, t, :, None, :] + (s @ alpha[:, t, :, :, None]) * beta[:, t, :, None, :]
             + v[:, t, :, :, None] * k[:, t, :, None, :])
        out.append((s @ r[:, t, :, :, None])[..., 0])
    return torch.stack(out, dim=1), s


def chunked(r, logd, k, v, alpha, beta, state, chunk: int = 16):
    """Per chunk with entry state S: P_t = Π_{i≤t} d_i, R̂ = r⊙P, Â = α⊙P/d, K̂ = k/P, B̂ = β/P;
    U = (I − tril(ÂB̂ᵀ,−1))⁻¹ (tril(ÂK̂ᵀ,−1) V + ÂSᵀ); O = R̂Sᵀ + tril(R̂K̂ᵀ)V + tril(R̂B̂ᵀ)U;
    S' = S diag(P_L) + Vᵀ(K̂⊙P_L) + Uᵀ(B̂⊙P_L). Chunks of ≤ 64 keep 1/P in range."""
    tr = lambda x: x.transpose(1, 2)  # noqa: E731  [B, T, H, N] -> [B, H, T, N]
    r, logd, k, v, alpha, beta = map(tr, (r, logd, k, v, alpha, beta))
    s, outs = state, []
    for c in range(0, r.shape[2], chunk):
        sl = slice(c, c + chunk)
        lc = logd[:, :, sl]
        cum = lc.cumsum(2)
        p, p_excl = cum.exp(), (cum - lc).exp()
        rh, ah, kh, bh = r[:, :, sl] * p, alpha[:, :, sl] * p_excl, k[:, :, sl] / p, beta[:, :, sl] / p
        vc = v[:, :, sl]
        n = rh.shape[2]
        eye = torch.eye(n, dtype=r.dtype, device=r.device)
        lower = torch.tril(ah @ bh.transpose(-2, -1), -1)
        rhs = torch.tril(ah @ kh.transpose(-2, -1), -1) @ vc + ah @ s.transpose(-2, -1)
        u = torch.linalg.solve_triangular(eye - lower, rhs, upper=False, unitriangular=True)
        outs.append(rh @ s.transpose(-2, -1) + torch.tril(rh @ kh.transpose(-2, -1)) @ vc
                    + torch.tril(rh @ bh.transpose(-2, -1)) @ u)
        pl = p[:, :, -1:]  # [B, H, 1, N]
        s = s * pl + vc.transpose(-2, -1) @ (kh * pl) + u.transpose(-2, -1) @ (bh * pl)
    return torch.cat(outs, dim=2).transpose(1, 2), s


def fla(r, logd, k, v, alpha, beta, state, chunk: int | None = None):
    """flash-linear-attention's chunked Triton kernel (GPU); its state is [B, H, K, V]."""
    from fla.ops.rwkv7 import chunk_rwkv7

    o, s = chunk_rwkv7(r, logd, k, v, alpha, beta, scale=1.0, initial_state=state.transpose(-2, -1).contiguous(),
                       output_final_state=True)
    return o, s.transpose(-2, -1)


KERNELS: dict[str, Kernel] = {"recurrent": recurrent, "chunked": chunked, "fla": fla}


def pick(name: str, device: torch.device) -> Kernel:
    """`auto`: fla on a GPU when installed, else the chunked PyTorch path."""
    if name == "auto":
        if device.type == "cuda":
            import importlib.util

            if importlib.util.find_spec("fla") is not None:
                return KERNELS["fla"]
        return chunked
    if name not in KERNELS:
        raise ValueError(f"unknown WKV kernel '{name}' (kernels: auto, {', '.join(KERNELS)})")
    return KERNELS[name]
