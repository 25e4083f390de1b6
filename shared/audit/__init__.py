"""The audit log: one append-only row for every change an admin or the system
makes to an org's configuration (teams, the escalation policy, webhooks and
their secrets, API keys, the Slack connection and links, redaction and
retention settings, purges and erasures). ``models`` holds the table and API
shapes, ``service`` records (in the caller's transaction) and reads."""

from shared.audit.service import SYSTEM, Actor, record

__all__ = ["SYSTEM", "Actor", "record"]
