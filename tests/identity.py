"""Identity providers for tests, both on 127.0.0.1:

* :func:`start_mock_provider`: a real ``oidc-provider-mock`` process (authlib
  and flask; RS256 only, one key per process, no ``kid`` in its ID tokens), and
  :func:`sign_in` to get an ID token from it through the Authorization Code flow
  as a browser would (its token endpoint wants a client secret; any will do);
* :class:`KeyServer` (``testkit/identity.py``, shared with the benchmarks): a tiny
  provider of our own (discovery and JWKS only) whose private keys the test holds.
"""

import json
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

from testkit.identity import CLIENT_ID, DANA, KeyServer, SigningKey  # noqa: F401 (re-exported)
from testkit.procs import Proc, free_port, spawn, wait_until
from testkit.procs import escalations_binary as _escalations

CLIENT_SECRET = "mock-client-secret-" + "0123456789" * 3
REDIRECT_URI = "http://127.0.0.1:1/auth/callback"  # never followed: the code is read off it

#: The settings that map ``DANA``'s claims: groups → roles, ``tenant`` → org.
MAPPING = {
    "oidc_client_id": CLIENT_ID,
    "oidc_role_claim": "groups",
    "oidc_role_map": {"esc-seniors": "senior", "esc-admins": "admin", "esc-staff": "engineer"},
    "oidc_org_claim": "tenant",
}


def start_mock_provider(log_dir: Path, *users: dict[str, Any], port: int | None = None) -> Proc:
    """``oidc-provider-mock`` with ``users`` predefined, its discovery answering on return."""
    port = port or free_port()
    binary = str(Path(_escalations()).with_name("oidc-provider-mock"))
    argv = [binary, "-p", str(port)]
    for user in users:
        argv += ["--user-claims", json.dumps(user)]
    proc = spawn(f"oidc-provider-{port}", argv, port=port, log_dir=log_dir)
    discovery = f"http://127.0.0.1:{port}/.well-known/openid-configuration"
    try:
        wait_until(lambda: _answers(discovery), proc=proc, what="OIDC discovery")
    except BaseException:
        proc.stop()
        raise
    return proc


def provider_url(proc: Proc) -> str:
    return f"http://127.0.0.1:{proc.port}"


def set_user(issuer: str, claims: dict[str, Any]) -> None:
    """Create or replace a user at the mock provider (its ``PUT /users/{sub}``)."""
    response = httpx.put(f"{issuer}/users/{claims['sub']}", json=claims, timeout=5)
    assert response.status_code == 204, response.text


def sign_in(
    issuer: str, sub: str, *, client_id: str = CLIENT_ID, nonce: str = "nonce-1"
) -> dict[str, Any]:
    """The mock's token response for ``sub`` (``id_token``, an opaque
    ``access_token``, ``refresh_token``): authorize as ``sub``, then exchange the code."""
    params = {"client_id": client_id, "redirect_uri": REDIRECT_URI, "response_type": "code",
              "scope": "openid profile email", "nonce": nonce, "state": "state-1"}  # fmt: skip
    authorized = httpx.post(f"{issuer}/oauth2/authorize", params=params, data={"sub": sub})
    assert authorized.status_code == 302, authorized.text
    query = dict(
        urllib.parse.parse_qsl(urllib.parse.urlsplit(authorized.headers["location"]).query)
    )
    exchanged = httpx.post(
        f"{issuer}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": REDIRECT_URI,
        },
        auth=(client_id, CLIENT_SECRET),
    )
    assert exchanged.status_code == 200, exchanged.text
    return exchanged.json()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
