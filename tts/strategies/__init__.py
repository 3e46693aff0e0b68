"""Strategies: generators make candidates, aggregators choose among them, searches own their loop."""

from tts.strategies.base import Aggregator, Generator, GenerateThenSelect, Search, StoppingRule

__all__ = ["Aggregator", "Generator", "GenerateThenSelect", "Search", "StoppingRule"]
