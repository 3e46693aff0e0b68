"""Evaluation: dataset loaders, metrics over stored records, summaries and reports."""
