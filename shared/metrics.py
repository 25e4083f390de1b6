"""Prometheus metric families, shared by the API and the workers. Each process
exposes its own (the API on ``/metrics``)."""

from prometheus_client import Counter, Gauge

OPEN_STREAMS = Gauge("escalations_sse_open_streams", "SSE streams open on this process.")
STREAM_DISCONNECTS = Counter(
    "escalations_sse_server_disconnects_total",
    "Streams the server closed, by reason (slow_client, shutdown).",
    ["reason"],
)
EVENTS_PUBLISHED = Counter(
    "escalations_events_published_total", "Outbox events relayed to Redis by this process."
)
EVENTS_DELIVERED = Counter(
    "escalations_events_delivered_total", "Events written to SSE clients by this process."
)
