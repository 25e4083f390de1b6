"""API keys for machine clients: created by an admin, shown once, stored as a
digest, verified with a short per-process cache (``verifier.py``)."""
