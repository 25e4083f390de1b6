"""Sample request bodies, importable by tests and benchmarks alike (no pytest)."""

import uuid


def handoff_body(session_id: str = "sess-1", **overrides: object) -> dict[str, object]:
    """A valid create body; keyword arguments replace top-level fields."""
    body: dict[str, object] = {
        "session_id": session_id,
        "engineer_notes": "Pods restart every few minutes after the deploy.",
        "priority": "normal",
        "snapshot": {
            "problem_summary": "Checkout service crash-loops with OOMKilled",
            "problem_domain": "kubernetes",
            "status": "stuck",
            "step_count": 4,
            "confidence_tier": "low",
            "tried_steps": [
                {"description": "Restarted the deployment", "outcome": "Still crashing"},
                {"description": "Checked recent commits", "outcome": "Nothing obvious"},
            ],
            "transcript": [{"role": "user", "content": "Why does checkout keep restarting?"}],
        },
    }
    body.update(overrides)
    return body


def fresh_handoff_body(session_id: str | None = None) -> dict[str, object]:
    """``handoff_body`` for a session no other handoff uses (a unique id when none is given)."""
    return handoff_body(session_id or f"storm-{uuid.uuid4().hex[:12]}")
