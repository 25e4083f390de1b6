"""The heuristic assessor: pure functions, no services needed."""

import json
import os
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from services.worker.assessors.base import AssessmentRequest, AssessmentResult, PastResolution
from services.worker.assessors.heuristic import (
    LAST_RESORT,
    MAX_CAUSES,
    MAX_STEPS,
    MAX_SUMMARY_CHARS,
    HeuristicAssessor,
    key_words,
    select_steps,
)
from shared.handoffs.models import ConfidenceTier

REPO_ROOT = Path(__file__).resolve().parents[2]

OOM_NOTES = (
    "payments-api pods restart every few minutes since this morning's deploy. "
    "kubectl describe: Last State Terminated, Reason: OOMKilled, Exit Code: 137"
)
OOM_PAST = PastResolution(
    handoff_id="past-oom",
    problem_summary="checkout-api pods OOMKilled in a crash loop after a deploy",
    problem_domain="kubernetes",
    engineer_notes="pods restart with OOMKilled, exit code 137",
    tried_steps=["restarted pods"],
    resolution_notes="Bounded the new in-memory image cache (CACHE_MAX_ITEMS=5000) "
    "and set the memory limit to 1Gi.",
)
UNRELATED_PAST = PastResolution(
    handoff_id="past-grafana",
    problem_summary="Grafana dashboard panels empty for the billing team",
    problem_domain="observability",
    engineer_notes="",
    tried_steps=[],
    resolution_notes="Fixed the Prometheus scrape relabeling for the billing namespace.",
)


def snapshot(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "problem_summary": "payments-api pods in CrashLoopBackOff",
        "problem_domain": "kubernetes",
        "status": "stuck",
        "step_count": 14,
        "confidence_tier": "low",
        "tried_steps": [],
        "transcript": [
            {"role": "user", "content": "the payments pods keep crashing"},
            {"role": "assistant", "content": "Error: java.lang.OutOfMemoryError: Java heap"},
        ],
    }
    return base | overrides


def request(
    *,
    notes: str = OOM_NOTES,
    past: list[PastResolution] | None = None,
    priority: str = "high",
    **snap: Any,
) -> AssessmentRequest:
    return AssessmentRequest(
        handoff_id="h-1",
        priority=priority,
        engineer_notes=notes,
        snapshot=snapshot(**snap),
        past_resolutions=past or [],
    )


def assess(req: AssessmentRequest) -> AssessmentResult:
    return HeuristicAssessor().assess(req)


def tried(*descriptions: str) -> list[dict[str, str]]:
    return [{"description": d, "outcome": "no change"} for d in descriptions]


def text_of(result: AssessmentResult) -> str:
    return " ".join([*result.likely_causes, *result.suggested_steps]).lower()


# --------------------------------------------------------------------------- determinism


def test_same_input_gives_same_output() -> None:
    req = request(past=[OOM_PAST, UNRELATED_PAST], tried_steps=tried("Restarted the pods"))

    assert assess(req) == assess(req)


@pytest.mark.slow  # starts interpreters with other hash seeds
def test_output_does_not_depend_on_the_hash_seed() -> None:
    code = (
        "import json, dataclasses, sys\n"
        "from tests.worker.test_heuristic import OOM_PAST, UNRELATED_PAST, request, tried\n"
        "from services.worker.assessors.heuristic import HeuristicAssessor\n"
        "req = request(past=[OOM_PAST, UNRELATED_PAST], tried_steps=tried('Restarted pods'))\n"
        "print(json.dumps(dataclasses.asdict(HeuristicAssessor().assess(req))))\n"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = os.environ | {"PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert json.loads(outputs.pop())["summary"]


# --------------------------------------------------------------------------- past fixes


def test_past_fix_for_a_similar_problem_comes_first() -> None:
    result = assess(request(past=[UNRELATED_PAST, OOM_PAST]))

    first = result.suggested_steps[0]
    assert first.startswith("Apply the fix that resolved a similar escalation")
    assert "checkout-api pods OOMKilled" in first
    assert "CACHE_MAX_ITEMS=5000" in first
    assert "checkout-api" in result.likely_causes[0]


def test_unrelated_past_resolution_is_not_suggested() -> None:
    result = assess(request(past=[UNRELATED_PAST]))

    assert "scrape" not in text_of(result)
    assert "grafana" not in result.summary.lower()
    assert not result.suggested_steps[0].startswith("Apply the fix")


def test_at_most_three_past_fixes_best_first() -> None:
    pasts = [
        replace(OOM_PAST, handoff_id=f"p{i}", resolution_notes=f"Fix {word} applied to the pods")
        for i, word in enumerate(("alpha", "beta", "gamma", "delta", "epsilon"))
    ]
    exact = replace(
        OOM_PAST,
        handoff_id="exact",
        problem_summary=snapshot()["problem_summary"],
        engineer_notes=OOM_NOTES,
        resolution_notes="The exact same fix",
    )
    pasts.append(exact)

    steps = assess(request(past=pasts)).suggested_steps

    past_steps = [s for s in steps if s.startswith("Apply the fix")]
    assert len(past_steps) == 3
    assert "The exact same fix" in steps[0]


def test_past_fix_the_junior_already_tried_is_skipped() -> None:
    past = replace(OOM_PAST, resolution_notes="Raised the memory limit to 1Gi.")

    result = assess(request(past=[past], tried_steps=tried("increased memory limit to 1Gi")))

    assert not any(s.startswith("Apply the fix") for s in result.suggested_steps)


# --------------------------------------------------------------------------- tried steps


RESTART_FIX = replace(OOM_PAST, resolution_notes="Restart the pods.")


def test_restart_fix_is_suggested_when_not_tried() -> None:
    steps = assess(request(past=[RESTART_FIX])).suggested_steps

    assert "Restart the pods" in steps[0]


@pytest.mark.parametrize(
    "description",
    [
        "Restarted the pods",
        "restart pods",
        "RESTARTING THE POD!!",
        "pods were restarted twice",
        "Did a rollout restart of the pods",
        "bounced the pods",
        "rebooted the pod",
    ],
)
def test_a_tried_step_never_comes_back(description: str) -> None:
    result = assess(request(past=[RESTART_FIX], tried_steps=tried(description)))

    for step in result.suggested_steps:
        assert not ("restart" in step.lower() and "pod" in step.lower()), step


REGRESSION_NOTES = "HTTP 500 on every checkout since the 14:05 deploy"


@pytest.mark.parametrize(
    ("notes", "description", "forbidden"),
    [
        (OOM_NOTES, "Increased the memory limit to 2Gi", "raise the memory limit"),
        (OOM_NOTES, "bumped memory limits", "raise the memory limit"),
        (OOM_NOTES, "Checked the logs of the previous container", "read the logs of the previous"),
        (REGRESSION_NOTES, "Rolled back the deploy", "roll back to the last good version"),
        (REGRESSION_NOTES, "reverted to v1.4.2", "roll back to the last good version"),
        (REGRESSION_NOTES, "rolling back now", "roll back to the last good version"),
    ],
)
def test_loosely_worded_playbook_steps_are_suppressed(
    notes: str, description: str, forbidden: str
) -> None:
    baseline = assess(request(notes=notes))
    assert any(forbidden in s.lower() for s in baseline.suggested_steps)

    steps = assess(request(notes=notes, tried_steps=tried(description))).suggested_steps

    assert not any(forbidden in s.lower() for s in steps)


def test_no_step_is_repeated() -> None:
    past = replace(OOM_PAST, resolution_notes="Raise the memory limit.")
    twin = replace(past, handoff_id="past-oom-2")

    steps = assess(request(past=[past, twin])).suggested_steps

    assert len(steps) == len(set(steps))
    assert sum("raise the memory limit" in s.lower() for s in steps) == 1


def test_key_words_normalise_case_punctuation_and_inflection() -> None:
    assert key_words("Restarted the PODS!") == key_words("restart pod")
    assert key_words("restarting pods") == key_words("restarts a pod")
    assert key_words("rolled back") == key_words("Revert") == {"rollback"}


# --------------------------------------------------------------------------- playbook


def test_oom_killed_points_at_the_memory_limit() -> None:
    result = assess(request(notes="Pod status OOMKilled", transcript=None))

    assert any("memory limit" in c for c in result.likely_causes)
    assert any("memory limit" in s.lower() for s in result.suggested_steps)


def test_nxdomain_points_at_dns() -> None:
    req = request(
        notes="curl: (6) Could not resolve host: ledger.internal; dig returns NXDOMAIN",
        problem_summary="orders service cannot reach the ledger service",
        problem_domain="networking",
        transcript=None,
    )

    result = assess(req)

    assert "resolution" in result.likely_causes[0].lower()
    assert any("dns" in s.lower() for s in result.suggested_steps)
    assert "NXDOMAIN" in result.summary


def test_too_many_connections_after_deploy() -> None:
    req = request(
        notes="FATAL: sorry, too many clients already; started after the 14:05 deploy",
        problem_summary="API returns 500s, Postgres refuses new connections",
        problem_domain="database",
        transcript=None,
    )

    result = text_of(assess(req))

    assert "max_connections" in result
    assert "roll back" in result


def test_certificate_error_points_at_tls_and_is_named_in_the_summary() -> None:
    req = request(
        notes="Calls to the partner bank API fail since Monday",
        problem_summary="Settlement job fails calling the partner API",
        problem_domain="networking",
        transcript=[
            {
                "role": "user",
                "content": "requests.exceptions.SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] "
                "certificate verify failed: unable to get local issuer certificate",
            },
        ],
    )

    result = assess(req)

    assert result.likely_causes[0].startswith("The TLS handshake fails")
    assert "openssl s_client" in result.suggested_steps[0]
    assert "SSLError" in result.summary
    assert "certificate verify failed" in result.summary


def test_unknown_domain_without_signals_still_gets_generic_advice() -> None:
    req = request(
        notes="",
        problem_summary="The thing behaves oddly",
        problem_domain="other",
        transcript=None,
    )

    result = assess(req)

    assert result.likely_causes and result.suggested_steps
    assert any("changed" in s for s in result.suggested_steps)


# --------------------------------------------------------------------------- confidence


def test_confidence_is_low_with_nothing_to_go_on() -> None:
    req = request(notes="", problem_summary="It is broken", problem_domain="other", transcript=None)

    assert assess(req).confidence is ConfidenceTier.low


def test_confidence_rises_with_a_strong_past_match() -> None:
    req = request(notes="pods restart again and again", transcript=None)
    without = assess(req).confidence
    with_past = assess(replace(req, past_resolutions=[OOM_PAST])).confidence

    order = [ConfidenceTier.low, ConfidenceTier.medium, ConfidenceTier.high]
    assert order.index(with_past) > order.index(without)


def test_rich_oom_case_with_past_match_is_high() -> None:
    assert assess(request(past=[OOM_PAST])).confidence is ConfidenceTier.high


# --------------------------------------------------------------------------- shape


@pytest.mark.parametrize(
    "req",
    [
        request(),
        request(past=[OOM_PAST, UNRELATED_PAST]),
        request(notes="", problem_summary="x", problem_domain="other", transcript=None),
        request(notes="x" * 10_000, problem_summary="y " * 1000, tried_steps=tried(*"abcdefgh")),
        request(transcript=[{"role": "user", "content": "OOMKilled " * 2000}] * 500),
        request(
            notes="OOMKilled 137 CrashLoopBackOff NXDOMAIN connection refused 429 503 x509 "
            "deadlock too many connections no space left on device permission denied 401 "
            "migration slow query heap leak latency after the deploy env var missing",
        ),
    ],
)
def test_lists_are_bounded_and_never_empty(req: AssessmentRequest) -> None:
    result = assess(req)

    assert 0 < len(result.summary) <= MAX_SUMMARY_CHARS
    assert 1 <= len(result.likely_causes) <= MAX_CAUSES
    assert 1 <= len(result.suggested_steps) <= MAX_STEPS
    assert all(s.strip() for s in [*result.likely_causes, *result.suggested_steps])
    assert isinstance(result.confidence, ConfidenceTier)


def test_having_tried_every_suggestion_yields_fresh_ones() -> None:
    everything = assess(request()).suggested_steps

    steps = assess(request(tried_steps=tried(*everything))).suggested_steps

    assert steps
    assert not set(steps) & set(everything)


def test_when_every_candidate_was_tried_a_verification_step_remains() -> None:
    candidates = [("Restart the pods", key_words("Restart the pods"))]

    assert select_steps(candidates, ["restarted pods"]) == [LAST_RESORT.text]


def test_summary_mentions_problem_attempts_and_error_signals() -> None:
    req = request(
        tried_steps=[{"description": "Restarted the pods", "outcome": "HTTP 503 from the LB"}],
        past=[OOM_PAST],
    )

    summary = assess(req).summary

    assert "payments-api pods in CrashLoopBackOff" in summary
    assert "kubernetes" in summary
    assert "tried 1 step (Restarted the pods)" in summary
    assert "14 AI-session steps" in summary
    for signal in ("OOMKilled", "exit code 137", "OutOfMemoryError", "HTTP 503"):
        assert signal in summary
    assert "checkout-api pods OOMKilled" in summary


def test_result_is_json_serialisable() -> None:
    assert json.loads(json.dumps(asdict(assess(request(past=[OOM_PAST])))))
