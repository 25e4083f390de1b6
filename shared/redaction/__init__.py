"""Secrets redacted before a handoff's text is stored.

``detectors``: what counts as a secret (detect-secrets' typed plugins plus our
rules for free text). ``redactor``: one org's redaction (built-ins and its own
patterns) applied to text and to a create's fields. ``service``: the org's
settings (``GET``/``PUT /api/v1/settings/redaction``) and the per-process cache.
"""
