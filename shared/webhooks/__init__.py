"""Webhooks: subscriptions per org, deliveries created from the outbox, and
sending them (signed per Standard Webhooks, or as Slack messages) safely."""
