"""Budgets: spending limits per problem and run (`limits`), and the TTSPM performance model that
says how much budget is worth spending (`ttspm`: accuracy curves, marginal gain, saturation N*)."""

from tts.budget.limits import UNITS, Budget, BudgetExhausted, Reservation, Unit

__all__ = ["UNITS", "Budget", "BudgetExhausted", "Reservation", "Unit"]
