"""Evaluation: metrics per task, baselines, the oracle, and the report."""
