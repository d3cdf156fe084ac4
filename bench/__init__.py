"""Benchmarks: the service measured against its floors on this machine (`make bench`).

Each module is one command with a `--quick` smoke mode and prints a table:
`python -m bench.overhead`, `bench.concurrency`, `bench.cost`, `bench.scale`;
`python -m bench.run_all` runs them all and regenerates `bench/RESULTS.md`.
"""
