"""Trace confidence for DeepConf-style filtering (Fu et al. 2025, "Deep Think with Confidence"):
the sliding-window ("group") confidence of a trace and its lowest value.

Deviation, labelled: DeepConf's token confidence is the negative mean log-probability of the top-k
candidate tokens at each position; backends here return the sampled token's log-probability only,
so a token's confidence is that log-probability (higher = more confident) and a group's confidence
is its mean over the window."""

from __future__ import annotations

from collections.abc import Sequence


def group_confidences(logprobs: Sequence[float], window: int) -> list[float]:
    """Mean token log-probability over every sliding window of `window` tokens (one value for a
    trace shorter than the window)."""
    if window < 1:
        raise ValueError("window must be >= 1")
    vals = [max(float(x), -1e4) for x in logprobs]
    if not vals:
        return []
    if len(vals) <= window:
        return [sum(vals) / len(vals)]
    total = sum(vals[:window])
    out = [total / window]
    for i in range(window, len(vals)):
        total += vals[i] - vals[i - window]
        out.append(total / window)
    return out


def lowest_group_confidence(logprobs: Sequence[float] | None, window: int) -> float:
    """The trace's weakest window (−inf for a trace without log-probabilities)."""
    groups = group_confidences(logprobs or [], window)
    return min(groups) if groups else float("-inf")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation between order statistics."""
    if not values:
        raise ValueError("percentile of no values")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
