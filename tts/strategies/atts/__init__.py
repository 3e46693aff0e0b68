"""ATTS: asynchronous draft/target test-time scaling with conformal rejection (see `generator`)."""

from tts.strategies.atts.conformal import ConformalCalibrator, alpha_for_budget, exact_rejection_rate
from tts.strategies.atts.generator import ATTS
from tts.strategies.atts.transcript import StepScorer

__all__ = ["ATTS", "ConformalCalibrator", "StepScorer", "alpha_for_budget", "exact_rejection_rate"]
