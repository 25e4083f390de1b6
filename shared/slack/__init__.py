"""The Slack app: a workspace connected per org, each handoff posted by the bot
and kept current in place, and the Claim button settled like an API claim.

``models`` (tables and API models), ``service`` (the connection and the links
between Slack users and people), ``messages`` (a handoff as Block Kit),
``sync`` (which messages need sending, from the outbox to RQ), ``jobs`` (one
message brought to its handoff's current state) and ``interactions`` (what a
click does)."""
