"""Benchmarks: each ``bench_<area>.py`` exposes ``main() -> dict`` and prints what it measured; a ratio of two
timings is always measured with :func:`bench.timing.compare` (interleaved pairs, min / median / max)."""
