"""Identity providers for tests, both on 127.0.0.1:

* :func:`start_mock_provider`: a real ``oidc-provider-mock`` process (authlib
  and flask; RS256 only, one key per process, no ``kid`` in its ID tokens), and
  :func:`sign_in` to get an ID token from it through the Authorization Code flow
  as a browser would (its token endpoint wants a client secret; any will do);
* :class:`KeyServer`: a tiny provider of our own (discovery and JWKS only) whose
  private keys the test holds, to sign any claims with RS256, ES256 or EdDSA,
  rotate its keys, count its key fetches, and stop answering.
"""

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from testkit.procs import Proc, free_port, spawn, wait_until
from testkit.procs import escalations_binary as _escalations

CLIENT_ID = "escalations-console"
CLIENT_SECRET = "mock-client-secret-" + "0123456789" * 3
REDIRECT_URI = "http://127.0.0.1:1/auth/callback"  # never followed: the code is read off it

DANA = {"sub": "dana", "name": "Dana Senior", "groups": ["esc-seniors"], "tenant": "acme",
        "email": "dana@example.test"}  # fmt: skip
#: The settings that map the users above: groups → roles, ``tenant`` → org.
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


# --- our own provider: discovery and JWKS -------------------------------------------


class SigningKey:
    """A private key, its algorithm and ``kid``; :meth:`sign` makes tokens."""

    def __init__(self, algorithm: str, kid: str) -> None:
        self.algorithm, self.kid = algorithm, kid
        if algorithm.startswith(("RS", "PS")):
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        elif algorithm == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.jwk = json.loads(OKPAlgorithm.to_jwk(self.private.public_key()))
        self.jwk.update(kid=kid, use="sig")

    def sign(self, claims: dict[str, Any], *, kid: str | None = None, **header: Any) -> str:
        return jwt.encode(
            claims,
            self.private,
            algorithm=self.algorithm,
            headers={"kid": kid or self.kid, **header},
        )


class KeyServer:
    """``with KeyServer() as server: server.issuer``; ``server.keys`` is what its
    JWKS publishes (replace it to rotate); ``server.jwks_fetches`` counts fetches;
    ``server.answering = False`` makes every request a 503."""

    def __init__(self, *keys: SigningKey, trailing_slash: bool = False) -> None:
        self.keys = list(keys)
        self.trailing_slash = trailing_slash  # as Auth0's issuers are written
        self.jwks_fetches = 0
        self.answering = True
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        slash = "/" if self.trailing_slash else ""
        return f"http://127.0.0.1:{self._server.server_address[1]}{slash}"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Good claims for Dana (a senior of ``acme``), expiring in 5 minutes."""
        now = int(time.time())
        claims = {**DANA, "iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300}
        claims.update(overrides)
        return {key: value for key, value in claims.items() if value is not None}

    def __enter__(self) -> "KeyServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if not server.answering:
                    return self._send(503, {"error": "down"})
                if self.path == "/.well-known/openid-configuration":
                    return self._send(200, {"issuer": server.issuer,
                                            "jwks_uri": f"{server.origin}/jwks"})  # fmt: skip
                if self.path == "/jwks":
                    server.jwks_fetches += 1
                    return self._send(200, {"keys": [key.jwk for key in server.keys]})
                return self._send(404, {})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
