"""Owners' analytics: time to first response, to claim and to resolve, per domain,
team, level and senior."""
