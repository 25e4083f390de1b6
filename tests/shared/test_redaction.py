"""Redaction as a function of text (``shared.redaction``): the whole secret goes,
its kind is named, prose stays; org patterns are bounded in time; a
maximum-size create costs well under a second."""

import time

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, inspect

from shared.auth.tokens import Principal
from shared.core.db import make_engine, session_scope
from shared.core.errors import InvalidInput
from shared.core.migrate import alembic_config
from shared.core.models import Role
from shared.handoffs.lifecycle import create_handoff
from shared.handoffs.models import HandoffCreate
from shared.redaction.detectors import find_secrets
from shared.redaction.redactor import Redactor, compile_pattern, redact_create
from shared.redaction.service import RedactorCache
from tests.conftest import handoff_body
from tests.redaction_corpus import (
    JWT,
    ORDINARY,
    RSA_PEM,
    SECRETS,
    SK_LIVE,
    Secret,
)

ALL = Redactor()


@pytest.mark.parametrize("secret", SECRETS, ids=lambda secret: secret.kind)
def test_each_secret_is_replaced_whole_by_a_marker(secret: Secret) -> None:
    redacted, count = ALL.redact(secret.text)
    assert count >= 1
    assert "[redacted: " in redacted
    assert not [value for value in secret.values if value in redacted]


@pytest.mark.parametrize("sentence", ORDINARY)
def test_ordinary_troubleshooting_text_comes_through_unchanged(sentence: str) -> None:
    assert ALL.redact(sentence) == (sentence, 0)


def test_kinds_are_named_and_the_text_around_a_secret_stays() -> None:
    text = f"before {RSA_PEM} between {JWT}. and {SK_LIVE} after"
    assert ALL.redact(text) == (
        "before [redacted: private key] between [redacted: JWT]. and [redacted: Stripe key] after",
        3,
    )


def test_a_jwt_loses_its_signature_and_a_long_stripe_key_its_tail() -> None:
    # detect-secrets' own matches stop before the signature and after 24 characters.
    signature = JWT.rsplit(".", 1)[1]
    longer = SK_LIVE + "MoreKeyCharacters0123456789"
    redacted, _ = ALL.redact(f"{JWT} {longer}")
    assert signature not in redacted and "MoreKeyCharacters" not in redacted


def test_a_private_key_without_its_end_line_is_redacted_to_the_end_of_the_text() -> None:
    truncated = RSA_PEM.rsplit("\n", 2)[0]  # the last body line and END cut off
    redacted, count = ALL.redact(f"key:\n{truncated}")
    assert (redacted, count) == ("key:\n[redacted: private key]", 1)


def test_a_password_in_a_url_goes_but_user_and_host_stay() -> None:
    redacted, _ = ALL.redact("postgresql://orders:" + "pa@ss!w0rd" + "@db-1.internal:5432/orders")
    assert redacted == "postgresql://orders:[redacted: database password]@db-1.internal:5432/orders"


@pytest.mark.parametrize(
    "prose",
    [
        "password: incorrect",
        "token: expired",
        "the secret: see the vault entry",
        "max_token=4096",
        "password=${DB_PASSWORD}",
        "api_key: <your key here>",
    ],
)
def test_keywords_in_prose_or_placeholders_are_not_secrets(prose: str) -> None:
    assert find_secrets(prose) == []


def test_a_disabled_redactor_changes_nothing() -> None:
    assert Redactor(enabled=False).redact(SECRETS[0].text) == (SECRETS[0].text, 0)


def test_org_patterns_name_their_marker_and_add_to_the_count() -> None:
    redactor = Redactor(patterns=(compile_pattern("employee id", r"EMP-\d{5}"),))
    redacted, count = redactor.redact(f"EMP-12345 pasted {SK_LIVE}; EMP-54321 too")
    assert redacted == (
        "[redacted: employee id] pasted [redacted: Stripe key]; [redacted: employee id] too"
    )
    assert count == 3


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("(unclosed", "invalid_redaction_pattern"),
        ("x" * 501, "invalid_redaction_pattern"),
        ("a*", "redaction_pattern_matches_empty"),
        (r"(a|aa)+$", "redaction_pattern_too_slow"),
        (r"(\w+\s?)+$", "redaction_pattern_too_slow"),
    ],
)
def test_bad_org_patterns_are_refused_with_a_code(source: str, code: str) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidInput) as refused:
        compile_pattern("bad", source)
    assert refused.value.code == code and refused.value.extra == {"pattern": "bad"}
    assert time.monotonic() - started < 2.0


def test_a_pattern_that_runs_out_of_time_withholds_the_field() -> None:
    # Fast on every probe (no run of "b"), exponential on a run of "b" without an end.
    slow = compile_pattern("slow", r"(b|bb)+$")
    redactor = Redactor(patterns=(slow,), budget_seconds=0.05)
    started = time.monotonic()
    redacted, count = redactor.redact("b" * 5_000 + "!")
    assert (redacted, count) == ("[redacted: slow]", 1)
    assert time.monotonic() - started < 1.5


def test_a_field_longer_than_its_limit_after_redaction_is_cut_to_it() -> None:
    summary = ("pwd=Ab1!xyz " * 200)[:2000]
    body = HandoffCreate.model_validate(
        handoff_body(snapshot={**handoff_body()["snapshot"], "problem_summary": summary})  # type: ignore[dict-item]
    )
    redacted, count = redact_create(body, ALL)
    assert count > 100
    assert len(redacted.snapshot.problem_summary) == 2000
    HandoffCreate.model_validate(redacted.model_dump())  # still a valid body


def maximum_create() -> HandoffCreate:
    """500 transcript messages (the most a create may have), each prose with a
    secret in it, about 256 KiB in all (the API's body limit)."""
    messages = [
        {
            "role": "user",
            "content": (f"{ORDINARY[n % len(ORDINARY)]} {SECRETS[n % 35].text} " * 8)[:490],
        }
        for n in range(500)
    ]
    snapshot = {**handoff_body()["snapshot"], "transcript": messages}  # type: ignore[dict-item]
    return HandoffCreate.model_validate(handoff_body(snapshot=snapshot))


def test_a_maximum_size_create_is_redacted_well_under_a_second() -> None:
    body = maximum_create()
    assert 240_000 < len(body.model_dump_json()) <= 256 * 1024  # the default body limit
    redactor = Redactor(patterns=(compile_pattern("employee id", r"EMP-\d{5}"),))
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        _, count = redact_create(body, redactor)
        timings.append(time.perf_counter() - started)
    print(
        f"\nredacting a {len(body.model_dump_json())} B create: best {min(timings) * 1000:.0f} ms,"
    )
    print(f"worst {max(timings) * 1000:.0f} ms, {count} secrets")
    assert count >= 500
    assert min(timings) < 1.0


def columns(engine: Engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns("handoffs")}


def test_migration_0016_downgrades_and_upgrades_again(migrated_url: str) -> None:
    config = alembic_config(migrated_url)
    before = ScriptDirectory.from_config(config).get_revision("0016").down_revision
    engine = make_engine(migrated_url)
    command.downgrade(config, str(before))
    assert "redactions" not in columns(engine)
    assert "redaction_settings" not in inspect(engine).get_table_names()
    command.upgrade(config, "head")
    assert "redactions" in columns(engine)
    principal = Principal(user_id="u-1", name="Jo", role=Role.engineer, org_id="acme")
    with session_scope(engine) as session:
        handoff, _ = create_handoff(
            session=session,
            principal=principal,
            body=HandoffCreate.model_validate(handoff_body(engineer_notes=SECRETS[0].text)),
            claim_sla_seconds=300,
        )
    assert handoff.redactions == 1
    engine.dispose()


def test_the_cache_reads_an_orgs_settings_once_per_ttl_and_again_after_forget(
    engine: Engine,
) -> None:
    statements: list[str] = []

    def listen(_connection: object, _cursor: object, statement: str, *_: object) -> None:
        if "FROM redaction_settings" in statement:
            statements.append(statement)

    cache = RedactorCache(ttl_seconds=60)
    event.listen(engine, "before_cursor_execute", listen)
    try:
        with session_scope(engine) as session:
            first = cache.redactor(session=session, org_id="acme")
            again = cache.redactor(session=session, org_id="acme")
            assert again is first and len(statements) == 1
            cache.redactor(session=session, org_id="globex")  # each org its own entry
            assert len(statements) == 2
            cache.forget("acme")
            assert cache.redactor(session=session, org_id="acme") is not first
            assert len(statements) == 3
            uncached = RedactorCache(ttl_seconds=0)
            uncached.redactor(session=session, org_id="acme")
            uncached.redactor(session=session, org_id="acme")
            assert len(statements) == 5
    finally:
        event.remove(engine, "before_cursor_execute", listen)
