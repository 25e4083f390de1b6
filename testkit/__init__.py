"""What the tests and the benchmarks both use: real processes (``procs``: free ports, a
private ``redis-server``, ``escalations api`` replicas; ``workers``: ``escalations worker``),
throwaway PostgreSQL databases (``pg``), request bodies (``samples``), claim storms over HTTP
(``storm``), a scripted webhook receiver (``webhook_receiver``), an OpenAI-compatible stub
(``openai_stub``) and the log scan for leaked tokens (``log_leaks``).

Not part of the installed package, like ``tests`` and ``bench``: it is imported from the
repository's root (pytest puts the root on ``sys.path``; benchmarks run as
``python -m bench.NAME`` from the root). Nothing here imports ``tests`` or pytest.
"""
