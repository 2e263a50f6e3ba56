"""Benchmarks: each prints its figure next to its ceiling, both measured in the same run."""
