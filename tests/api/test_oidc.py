"""Tokens from an OIDC identity provider, beside the service's own: a real
``oidc-provider-mock`` process (RS256) and a key server of our own on
127.0.0.1 (ES256, EdDSA, rotation, outages, forged claims: the mock signs
RS256 only, with one key per process, and the test cannot hold its key).

Every trick is 401: ``alg: none``, HS256 with the provider's public key as the
secret, another key under the provider's ``kid``, wrong ``iss``, wrong or
missing ``aud``, expired."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm
from redis import Redis
from sqlalchemy import Engine

from services.api.app import create_app
from shared.core.settings import Settings
from testkit import log_leaks
from testkit.procs import GENEROUS_LIMITS, Proc
from tests.api.helpers import HANDOFFS, assert_error, create
from tests.conftest import REDIS_URL, TEST_SECRET, TokenFactory
from tests.identity import (
    CLIENT_SECRET,
    DANA,
    MAPPING,
    KeyServer,
    SigningKey,
    provider_url,
    set_user,
    sign_in,
    start_mock_provider,
)

ME = "/api/v1/me"
log_leaks.register_secret(CLIENT_SECRET)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    proc = start_mock_provider(tmp_path_factory.mktemp("oidc"), DANA)
    try:
        yield proc
    finally:
        proc.stop()


def oidc_settings(database_url: str, issuer: str, **extra: Any) -> Settings:
    values = {**MAPPING, "oidc_issuer": issuer, **extra}
    return Settings(
        database_url=database_url, redis_url=REDIS_URL, jwt_secret=TEST_SECRET,
        **GENEROUS_LIMITS, **values,
    )  # fmt: skip


@pytest.fixture
def oidc_client(
    provider: Proc, database_url: str, engine: Engine, redis: Redis
) -> Iterator[TestClient]:
    settings = oidc_settings(database_url, provider_url(provider))
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    with KeyServer(SigningKey("RS256", "rsa-1"), SigningKey("ES256", "ec-1")) as server:
        yield server


@pytest.fixture
def own_client(key_server: KeyServer, database_url: str, engine: Engine, redis: Redis) -> Any:
    settings = oidc_settings(database_url, key_server.issuer)
    with TestClient(create_app(settings)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(signature)


def payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


# --- the real provider ----------------------------------------------------------------


def test_a_provider_token_is_accepted_with_role_and_org(
    oidc_client: TestClient, provider: Proc, auth: TokenFactory
) -> None:
    id_token = sign_in(provider_url(provider), "dana")["id_token"]
    me = oidc_client.get(ME, headers=bearer(id_token))
    assert me.status_code == 200, me.text
    assert {key: me.json()[key] for key in ("id", "name", "role", "org_id")} == {
        "id": "dana", "name": "Dana Senior", "role": "senior", "org_id": "acme",
    }  # fmt: skip
    handoff = create(oidc_client, auth("engineer"))
    claimed = oidc_client.post(f"{HANDOFFS}/{handoff['id']}/claim", headers=bearer(id_token))
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["claimed_by_id"] == "dana"
    # The service's own HS256 tokens keep working beside the provider's.
    assert oidc_client.get(ME, headers=auth("admin")).json()["role"] == "admin"


def test_groups_map_to_the_highest_role_else_default_or_no_role(
    provider: Proc, database_url: str, engine: Engine, redis: Redis
) -> None:
    issuer = provider_url(provider)
    set_user(issuer, {"sub": "ann", "name": "Ann", "groups": ["esc-staff", "esc-admins"],
                      "tenant": "acme"})  # fmt: skip
    set_user(issuer, {"sub": "bo", "preferred_username": "bo.l", "groups": "unrelated",
                      "tenant": "acme"})  # fmt: skip
    ann = sign_in(issuer, "ann")["id_token"]
    bo = sign_in(issuer, "bo")["id_token"]
    with TestClient(create_app(oidc_settings(database_url, issuer))) as client:
        assert client.get(ME, headers=bearer(ann)).json()["role"] == "admin"
        me = client.get(ME, headers=bearer(bo)).json()
        assert (me["role"], me["name"]) == ("engineer", "bo.l")  # the default role
    strict = oidc_settings(database_url, issuer, oidc_default_role="")
    with TestClient(create_app(strict)) as client:
        body = assert_error(client.get(ME, headers=bearer(bo)), 403, "no_role")
        assert "group" in body["detail"]
        assert client.get(ME, headers=bearer(ann)).status_code == 200


def test_a_single_tenant_deployment_fixes_the_org(
    provider: Proc, database_url: str, engine: Engine, redis: Redis
) -> None:
    issuer = provider_url(provider)
    settings = oidc_settings(database_url, issuer, oidc_org_claim=None, oidc_org="solo")
    with TestClient(create_app(settings)) as client:
        me = client.get(ME, headers=bearer(sign_in(issuer, "dana")["id_token"])).json()
        assert me["org_id"] == "solo"


def test_a_token_for_another_client_is_401(oidc_client: TestClient, provider: Proc) -> None:
    theirs = sign_in(provider_url(provider), "dana", client_id="another-app")["id_token"]
    assert payload(theirs)["aud"] == ["another-app"]
    assert_error(oidc_client.get(ME, headers=bearer(theirs)), 401, "not_authenticated")


def test_algorithm_tricks_on_a_real_token_are_401(oidc_client: TestClient, provider: Proc) -> None:
    issuer = provider_url(provider)
    real = sign_in(issuer, "dana")["id_token"]
    claims = payload(real)
    public_jwk = httpx.get(f"{issuer}/jwks").json()["keys"][0]
    public_pem = RSAAlgorithm.from_jwk(public_jwk).public_bytes(  # type: ignore[union-attr]
        encoding=Encoding.PEM, format=PublicFormat.SubjectPublicKeyInfo
    )
    forgeries = {
        "alg none": unsigned({"alg": "none", "typ": "JWT"}, claims),
        "alg None": unsigned({"alg": "None"}, claims),
    }
    for secret in (public_pem, json.dumps(public_jwk).encode(), public_jwk["n"].encode()):
        head = unsigned({"alg": "HS256", "kid": public_jwk["kid"]}, claims).rsplit(".", 1)[0]
        signature = hmac.new(secret, head.encode(), hashlib.sha256).digest()
        forgeries[f"HS256 with {secret[:12]!r}"] = head + "." + b64(signature)
    other = SigningKey("RS256", public_jwk["kid"])  # another key, the provider's kid
    forgeries["another key, the provider's kid"] = other.sign(claims)
    forgeries["another key, no kid"] = other.sign(claims, kid=None)
    for what, token in forgeries.items():
        response = oidc_client.get(ME, headers=bearer(token))
        assert response.status_code == 401, (what, response.text)
    assert oidc_client.get(ME, headers=bearer(real)).status_code == 200


# --- our own key server: other algorithms, forged claims, rotation, outages --------


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA", "PS256"])
def test_asymmetric_algorithms_are_accepted(
    algorithm: str, database_url: str, engine: Engine, redis: Redis
) -> None:
    key = SigningKey(algorithm, f"{algorithm}-1")
    with (
        KeyServer(key) as server,
        TestClient(create_app(oidc_settings(database_url, server.issuer))) as client,
    ):
        me = client.get(ME, headers=bearer(key.sign(server.claims())))
        assert me.status_code == 200, me.text
        assert (me.json()["id"], me.json()["role"]) == ("dana", "senior")


def test_bad_claims_are_401(own_client: TestClient, key_server: KeyServer) -> None:
    rsa, ec = key_server.keys
    now = int(time.time())
    bad = {
        "wrong iss": key_server.claims(iss="http://127.0.0.1:1"),
        "iss with a trailing slash": key_server.claims(iss=key_server.issuer + "/"),
        "wrong aud": key_server.claims(aud="another-app"),
        "missing aud": key_server.claims(aud=None),
        "expired": key_server.claims(iat=now - 600, exp=now - 60),
        "no exp": key_server.claims(exp=None),
        "exp as a string": key_server.claims(exp=str(now + 300)),
        "lifetime over the maximum": key_server.claims(exp=now + 2 * 86_400),
        "not yet valid": key_server.claims(nbf=now + 600),
        "no sub": key_server.claims(sub=None),
        "a sub reserved for API keys": key_server.claims(sub="apikey:1"),
        "no org": key_server.claims(tenant=None),
    }
    for what, claims in bad.items():
        for key in (rsa, ec):
            response = own_client.get(ME, headers=bearer(key.sign(claims)))
            assert response.status_code == 401, (what, key.algorithm, response.text)
    # An RS256 token naming the EC key.
    crossed = rsa.sign(key_server.claims(), kid="ec-1")
    assert own_client.get(ME, headers=bearer(crossed)).status_code == 401
    within_leeway = key_server.claims(iat=now - 300, exp=now - 5)
    assert own_client.get(ME, headers=bearer(ec.sign(within_leeway))).status_code == 200


def test_a_rotated_key_is_accepted_without_a_restart(
    own_client: TestClient, key_server: KeyServer
) -> None:
    old = key_server.keys[0]
    assert own_client.get(ME, headers=bearer(old.sign(key_server.claims()))).status_code == 200
    new = SigningKey("ES256", "ec-2")
    key_server.keys = [new]  # the provider rotates: the old keys are gone
    response = own_client.get(ME, headers=bearer(new.sign(key_server.claims())))
    assert response.status_code == 200, response.text
    assert own_client.get(ME, headers=bearer(old.sign(key_server.claims()))).status_code == 401


def test_made_up_kids_refetch_the_keys_at_most_once_per_30_seconds(
    own_client: TestClient, key_server: KeyServer
) -> None:
    key = key_server.keys[0]
    assert own_client.get(ME, headers=bearer(key.sign(key_server.claims()))).status_code == 200
    fetches = key_server.jwks_fetches
    for index in range(40):
        token = key.sign(key_server.claims(), kid=f"made-up-{index}")
        assert own_client.get(ME, headers=bearer(token)).status_code == 401
    assert key_server.jwks_fetches - fetches <= 1
    # Within those 30 s a key the provider really added waits for the next refetch,
    # while the cached keys keep working.
    assert own_client.get(ME, headers=bearer(key.sign(key_server.claims()))).status_code == 200


def test_cached_keys_outlive_the_provider_and_no_keys_is_503(
    key_server: KeyServer, database_url: str, engine: Engine, redis: Redis
) -> None:
    key = key_server.keys[1]
    settings = oidc_settings(database_url, key_server.issuer)
    with TestClient(create_app(settings)) as client:
        assert client.get(ME, headers=bearer(key.sign(key_server.claims()))).status_code == 200
        key_server.answering = False
        assert client.get(ME, headers=bearer(key.sign(key_server.claims()))).status_code == 200
    with TestClient(create_app(settings)) as client:  # a fresh process: nothing cached
        response = client.get(ME, headers=bearer(key.sign(key_server.claims())))
        assert_error(response, 503, "identity_provider_unavailable")
        key_server.answering = True  # back, but the 30 s between fetches are not over
        assert client.get(ME, headers=bearer(key.sign(key_server.claims()))).status_code == 503


def test_settings_refuse_an_incomplete_provider(database_url: str) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        oidc_settings(database_url, "http://127.0.0.1:1", oidc_org="solo")
    with pytest.raises(ValueError, match="AUDIENCE"):
        oidc_settings(database_url, "http://127.0.0.1:1", oidc_client_id=None)
    with pytest.raises(ValueError):
        oidc_settings(database_url, "http://127.0.0.1:1", oidc_role_map={"x": "root"})
    settings = oidc_settings(database_url, "http://127.0.0.1:1/", oidc_audience="api://esc")
    assert (settings.oidc_issuer, settings.oidc_expected_audience) == (
        "http://127.0.0.1:1/",
        "api://esc",
    )  # fmt: skip  (the issuer exactly as the provider writes it: Auth0's ends with "/")


def test_an_issuer_ending_with_a_slash_is_matched_exactly(
    database_url: str, engine: Engine, redis: Redis
) -> None:
    key = SigningKey("RS256", "rsa-1")
    with KeyServer(key, trailing_slash=True) as server:
        assert server.issuer.endswith("/")
        with TestClient(create_app(oidc_settings(database_url, server.issuer))) as client:
            assert client.get(ME, headers=bearer(key.sign(server.claims()))).status_code == 200
            unslashed = server.claims(iss=server.issuer.rstrip("/"))
            assert client.get(ME, headers=bearer(key.sign(unslashed))).status_code == 401
