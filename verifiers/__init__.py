"""Verifiers: extractors (model text -> canonical answer), graders (answer vs reference, used only
by the controller after a strategy returns) and selectors (scores a strategy may use)."""
