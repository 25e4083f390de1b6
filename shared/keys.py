"""Every Redis key, channel and queue name the service uses, in one place."""

ASSESSMENTS_QUEUE = "assessments"
ASSESS_JOB_FUNC = "services.worker.tasks.assess_handoff"


def claim_lock(handoff_id: str) -> str:
    """Short-lived lock (SET NX PX) held while one replica claims a handoff."""
    return f"escalations:claim-lock:{handoff_id}"


def assessment_job_id(handoff_id: str) -> str:
    """Deterministic RQ job id: letters, digits and ``-`` only."""
    return f"assess-{handoff_id}"


def org_events_channel(org_id: str) -> str:
    return f"escalations:events:{org_id}"
