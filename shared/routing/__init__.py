"""Who a handoff reaches and when: teams and domains, escalation policies and
levels, assignment, the claim SLA, and who is present."""
