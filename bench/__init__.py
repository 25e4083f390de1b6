"""Benchmarks and the chaos soak, run from the repository's root as ``python -m bench.NAME``
(docs/benchmarks.md). Their processes, databases and HTTP helpers are ``testkit``'s, shared with
the tests; what only the benchmarks share is in ``bench.common``."""
