"""Benchmarks: ratios measured side by side in one run, never timed assertions in tests.

Each area has a module here with ``run(quick: bool) -> dict[str, object]`` returning the
keys it measures (``storage_ratio``, ``worker_overhead_ratio``, ...). ``python -m
bench`` (``make bench``) runs them all and merges the keys into
``.veritrain/bench/results.json`` via :func:`record`; ``--quick`` runs a tiny configuration
(the test suite checks the harness that way).
"""
