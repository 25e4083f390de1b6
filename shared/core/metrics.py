"""Prometheus metric families, shared by the API and the workers. Each process
exposes its own (the API on ``/metrics``)."""

from prometheus_client import Counter, Gauge, Histogram

OPEN_STREAMS = Gauge("escalations_sse_open_streams", "SSE streams open on this process.")
STREAM_DISCONNECTS = Counter(
    "escalations_sse_server_disconnects_total",
    "Streams the server closed, by reason (slow_client: its inbox overflowed; "
    "send_timeout: it took no write for the send timeout; shutdown).",
    ["reason"],
)
EVENTS_PUBLISHED = Counter(
    "escalations_events_published_total", "Outbox events relayed to Redis by this process."
)
EVENTS_DELIVERED = Counter(
    "escalations_events_delivered_total", "Events written to SSE clients by this process."
)
HTTP_REQUESTS = Counter(
    "escalations_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "escalations_http_request_duration_seconds",
    "HTTP request latency by route template (event streams excluded).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CLAIMS = Counter(
    "escalations_claims_total",
    "Claim attempts by outcome: won, lost (409 naming the winner), repeat (own claim again).",
    ["outcome"],
)
ASSESSMENTS = Counter(
    "escalations_assessments_total",
    "Assessment tries by outcome (ready, failed_try, failed, skipped).",
    ["outcome"],
)
ASSESSMENT_DURATION = Histogram(
    "escalations_assessment_duration_seconds",
    "Time an assessor took, by outcome.",
    ["outcome"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
RATE_LIMITED = Counter(
    "escalations_rate_limited_total",
    "Requests refused with 429 by an abuse limit, by limit.",
    ["limit"],
)
RATE_LIMIT_UNAVAILABLE = Counter(
    "escalations_rate_limit_unavailable_total",
    "Limit checks skipped because Redis did not answer (the request went ahead), by limit.",
    ["limit"],
)
WEBHOOK_DELIVERIES = Counter(
    "escalations_webhook_deliveries_total",
    "Webhook delivery tries by outcome (delivered; retry: due again later; failed: no try "
    "left or the webhook is disabled; disabled: the receiver answered 410; skipped: nothing "
    "to do; deferred: the worker's try pool stayed full, due again at once) and format.",
    ["outcome", "format"],
)
WEBHOOK_TRY_DURATION = Histogram(
    "escalations_webhook_try_duration_seconds",
    "One webhook try, from DNS resolution to the last byte read, by format.",
    ["format"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WEBHOOK_DELIVERY_LATENCY = Histogram(
    "escalations_webhook_delivery_latency_seconds",
    "From a delivery's creation (its event's commit) to the receiver's 2xx, by format.",
    ["format"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200),
)
