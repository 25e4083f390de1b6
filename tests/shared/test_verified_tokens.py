"""The verified-token memory (``shared.auth.verified``) and how the
``Authenticator`` uses it: a JWT seen again within 30 s is not verified again,
never past its ``exp``, never across a change of the provider's key set; API
keys are not kept there (their own 0.5 s cache bounds a revocation)."""

import time
from datetime import timedelta

import pytest

from shared.auth import authenticator as authenticator_module
from shared.auth.authenticator import Authenticator
from shared.auth.tokens import Principal, issue_bearer_token
from shared.auth.verified import VerifiedTokens
from shared.core.errors import NotAuthenticated
from shared.core.models import Role
from shared.core.settings import Settings
from tests.conftest import TEST_SECRET


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def principal(expires_in: float | None = 600) -> Principal:
    expires_at = None if expires_in is None else time.time() + expires_in
    return Principal("u-1", "Una", Role.senior, "org-1", expires_at=expires_at)


def test_a_token_is_kept_for_the_ttl_only() -> None:
    clock = Clock()
    tokens = VerifiedTokens(ttl_seconds=30, clock=clock)
    kept = principal()
    tokens.keep("t", kept, keys=None)
    clock.now += 29.9
    assert tokens.get("t", None) is kept
    clock.now += 0.1
    assert tokens.get("t", None) is None
    assert len(tokens) == 0  # forgotten, not only skipped


def test_never_past_the_tokens_exp() -> None:
    tokens = VerifiedTokens()
    tokens.keep("soon", principal(expires_in=-0.001), keys=None)
    assert tokens.get("soon", None) is None


def test_a_change_of_the_key_set_forgets_the_token() -> None:
    tokens = VerifiedTokens()
    tokens.keep("t", principal(), keys=1)
    assert tokens.get("t", 1) is not None
    assert tokens.get("t", 2) is None
    assert tokens.get("t", 1) is None  # gone for good: verified again from now on


def test_the_least_recently_used_token_goes_first() -> None:
    tokens = VerifiedTokens(max_tokens=2)
    for token in ("a", "b"):
        tokens.keep(token, principal(), keys=None)
    assert tokens.get("a", None) is not None  # "b" is now the least recently used
    tokens.keep("c", principal(), keys=None)
    assert [tokens.get(t, None) is not None for t in ("a", "b", "c")] == [True, False, True]


class CountingApiKeys:
    def __init__(self) -> None:
        self.calls = 0

    def principal(self, key: str) -> Principal:
        self.calls += 1
        return Principal("apikey:1", "ci", Role.engineer, "org-1", session_id="apikey:1")


def test_the_authenticator_verifies_a_jwt_once_but_asks_for_an_api_key_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(database_url="sqlite://", redis_url="", jwt_secret=TEST_SECRET)
    api_keys = CountingApiKeys()
    authenticator = Authenticator(settings=settings, api_keys=api_keys)  # type: ignore[arg-type]
    decoded = []
    decode = authenticator_module.decode_token
    monkeypatch.setattr(
        authenticator_module,
        "decode_token",
        lambda token, **kwargs: decoded.append(token) or decode(token, **kwargs),
    )
    token = issue_bearer_token(
        settings, sub="u-1", name="Una", role=Role.senior, org="org-1", ttl=timedelta(minutes=5)
    )
    first, again = authenticator.principal(token), authenticator.principal(token)
    assert first == again and first.user_id == "u-1" and decoded == [token]
    for _ in range(2):
        authenticator.principal("esk_" + "k" * 43)
    assert api_keys.calls == 2  # the key's own cache decides, every time
    with pytest.raises(NotAuthenticated):
        authenticator.principal(token[:-4] + "AAAA")
    with pytest.raises(NotAuthenticated):  # a refused token is not kept
        authenticator.principal(token[:-4] + "AAAA")
    assert len(authenticator.verified) == 1
