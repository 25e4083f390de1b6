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


#: A transcript of about 200 KB of JSON (500 messages, the most a snapshot holds).
LONG_TRANSCRIPT = [
    {"role": "user" if n % 2 else "assistant", "content": f"message {n}: " + "t" * 390}
    for n in range(500)
]


def long_handoff_body(session_id: str = "sess-long") -> dict[str, object]:
    """A create body with every long field at its limit: a 2,000-character summary,
    10,000 characters of notes, 200 tried steps of 2 × 2,000 characters and a
    ~200 KB transcript (about 1 MB in all)."""
    base = handoff_body(session_id)
    step = {"description": "d" * 2_000, "outcome": "o" * 2_000}
    snapshot = {
        **base["snapshot"],  # type: ignore[dict-item]
        "problem_summary": "Checkout is down " + "s" * 1_983,
        "tried_steps": [step] * 200,
        "transcript": LONG_TRANSCRIPT,
    }
    return {**base, "engineer_notes": "n" * 10_000, "snapshot": snapshot}
