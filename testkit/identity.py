"""Our own identity provider for tests and benchmarks, on 127.0.0.1: discovery and a
JWKS whose private keys the caller holds (:class:`KeyServer`), to sign any claims with
RS256, ES256 or EdDSA (:class:`SigningKey`), rotate its keys, count its key fetches and
stop answering. ``tests/identity.py`` adds a real provider process for the sign-in flow."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

CLIENT_ID = "escalations-console"
DANA = {"sub": "dana", "name": "Dana Senior", "groups": ["esc-seniors"], "tenant": "acme",
        "email": "dana@example.test"}  # fmt: skip


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
