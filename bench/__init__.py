"""Benchmarks: each ``bench_<area>.py`` exposes ``main() -> dict`` and prints the ratios it measured."""
