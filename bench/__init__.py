"""Benchmarks: figures measured against named baselines, created in the same run. `python -m bench`."""
