"""Benchmark conventions.

One pytest-benchmark group per performance target, named by its ID (``P3-transition``); in each
group the project's case has the id ``symphony`` and every same-run baseline ``baseline:<what>``.
Targets are recorded in ``benchmark.extra_info["target"]`` and judged in ``docs/benchmarks.md``,
never asserted on time (the machines are shared and noisy).
"""
