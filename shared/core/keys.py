"""Every Redis key, channel and queue name the service uses, in one place."""

ASSESSMENTS_QUEUE = "assessments"
ASSESS_JOB_FUNC = "services.worker.tasks.assess_handoff"
NOTIFICATIONS_QUEUE = "notifications"
DELIVER_JOB_FUNC = "services.worker.webhooks.deliver_webhook"
SLACK_SYNC_JOB_FUNC = "services.worker.slack.sync_slack_message"
#: What ``escalations worker --queues`` accepts, in the order a worker serves them.
WORKER_QUEUES = (ASSESSMENTS_QUEUE, NOTIFICATIONS_QUEUE)


def claim_lock(handoff_id: str) -> str:
    """Short-lived lock (SET NX PX) held while one replica claims a handoff."""
    return f"escalations:claim-lock:{handoff_id}"


def assessment_job_id(handoff_id: str) -> str:
    """Deterministic RQ job id: letters, digits and ``-`` only."""
    return f"assess-{handoff_id}"


def assessment_lease(handoff_id: str) -> str:
    """Kept alive by the worker running the assessment; its absence while the
    job says "started" means the worker died."""
    return f"escalations:assessment-lease:{handoff_id}"


def delivery_job_id(delivery_id: str, attempt: int) -> str:
    """RQ job id of one try (1-based ``attempt``) of a webhook delivery: letters,
    digits and ``-`` only; each try is its own job, so a finished try never
    shadows the next one."""
    return f"deliver-{delivery_id}-{attempt}"


def delivery_try_lease(delivery_id: str, attempt: int) -> str:
    """Present (with a TTL above the try's deadline) while a notifications worker's
    pool sends that try; the reconciler counts its job as live meanwhile."""
    return f"escalations:delivery-try:{delivery_id}:{attempt}"


RECONCILER_LOCK = "escalations:reconciler-lock"

#: Taken for one pass by the worker re-enqueueing lost webhook deliveries.
DELIVERY_RECONCILER_LOCK = "escalations:delivery-reconciler-lock"

#: Taken by the worker running the retention sweep (``shared/retention/sweep.py``):
#: one sweep per ``RETENTION_SWEEP_SECONDS`` across all workers.
RETENTION_SWEEP_LOCK = "escalations:retention-sweep-lock"

#: The one pub/sub channel every process publishes events on and every API
#: process subscribes to (one subscription per process, fanned out in-process).
EVENTS_CHANNEL = "escalations:events"

#: Prefix of the per-org locks held while relaying an org's events from the
#: outbox table, so two relays do not read and publish the same backlog.
RELAY_LOCK_PREFIX = "escalations:relay-lock"


def relay_lock(org_id: str) -> str:
    return f"{RELAY_LOCK_PREFIX}:{org_id}"


def relay_last_seq(org_id: str) -> str:
    """The org's last event ``seq`` published (the relay's in-order script keeps it)."""
    return f"escalations:relay-last-seq:{org_id}"


def relay_held(org_id: str) -> str:
    """The org's events held by the relay's in-order script until their predecessor is out."""
    return f"escalations:relay-held:{org_id}"


#: Taken for one pass by the worker moving due assessment retries to the queue.
RETRY_MOVER_LOCK = "escalations:retry-mover-lock"

#: Prefix of the rate-limit counters (the ``limits`` package adds the rest:
#: ``escalations:ratelimit:LIMITER/<limit>/<identifiers>/<rate>``).
RATE_LIMIT_PREFIX = "escalations:ratelimit"


def open_streams(org_id: str, user_id: str) -> str:
    """Sorted set of one user's open event streams on every replica: member the
    stream id, score the time (Unix seconds) its entry expires unless refreshed."""
    return f"escalations:open-streams:{len(org_id)}:{org_id}:{user_id}"


def presence_streams(org_id: str) -> str:
    """Sorted set of the org's seniors' and admins' open event streams on every
    replica: member ``{stream id}:{user id}``, score as in ``open_streams``."""
    return f"escalations:presence-streams:{org_id}"


def presence_heartbeats(org_id: str) -> str:
    """Sorted set of the org's user ids, scored by the time (Unix seconds) their
    last presence heartbeat stops counting."""
    return f"escalations:presence-heartbeats:{org_id}"


def presence_people(org_id: str) -> str:
    """Hash of the org's present (or lately present) people: user id →
    ``{since}|{role}|{name}``; people no longer present are removed on read."""
    return f"escalations:presence-people:{org_id}"


#: Published with a stream session's id (a cookie token's ``jti``) when it is
#: revoked, so every API process ends that session's open streams at once.
STREAM_REVOCATIONS_CHANNEL = "escalations:stream-revocations"


def revoked_stream_session(session_id: str) -> str:
    """Present while a revoked stream cookie could still be presented: it expires
    with the cookie's token."""
    return f"escalations:stream-revoked:{session_id}"


def oidc_sign_in(state: str) -> str:
    """A console sign-in under way at the identity provider: its PKCE verifier and
    nonce, by its ``state``; taken (GETDEL) by the callback, so it is single-use."""
    return f"escalations:oidc-sign-in:{state}"


def console_session(session_id: str) -> str:
    """A console session begun at the identity provider: who signed in and the
    provider's refresh token; lives as long as the session may."""
    return f"escalations:console-session:{session_id}"


def slack_message_job_id(message_id: str) -> str:
    """RQ job id of the job bringing one Slack message up to date: one per
    message, so the updates of a message never run side by side."""
    return f"slack-message-{message_id}"


def slack_message_lock(message_id: str) -> str:
    """Held while one job renders and sends a Slack message."""
    return f"escalations:slack-message-lock:{message_id}"


def slack_link_code(code: str) -> str:
    """A one-time code linking a Slack user to a person (JSON; expires in 15 minutes)."""
    return f"escalations:slack-link-code:{code}"
