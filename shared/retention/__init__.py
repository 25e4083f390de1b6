"""Retention: how long an org keeps handoff content, events and delivery logs,
and the purge that removes a closed handoff's content (by the sweep, or by an
admin now). ``models`` holds the table and API shapes, ``service`` the
settings and the purge, ``sweep`` the worker's periodic job."""
