"""A handoff's life: create (with idempotency), claim, release, reassign, resolve,
cancel; the queue's listing; the views events and answers carry."""
