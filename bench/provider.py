"""A minimal OpenID provider for benchmarks: discovery and a JWKS on 127.0.0.1, one
RS256 key, and tokens signed with it for any claims (no sign-in flow).

    with Provider() as provider:
        env = api_env(..., **provider.settings())
        token = provider.token(sub="dana", tenant="acme")
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "escalations-bench"
KID = "bench-1"


class Provider:
    def __init__(self) -> None:
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._jwk = {**json.loads(RSAAlgorithm.to_jwk(self._private.public_key())), "kid": KID}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def settings(self) -> dict[str, str]:
        """The replica's settings (``api_env`` keywords) that trust this provider:
        ``groups`` map to roles by name, ``tenant`` is the org."""
        return {
            "oidc_issuer": self.issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_role_claim": "groups",
            "oidc_org_claim": "tenant",
        }

    def token(self, *, sub: str, tenant: str, role: str, seconds: int = 3600) -> str:
        """An RS256 token (with ``kid``) for ``sub``, a ``role`` of org ``tenant``."""
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "sub": sub, "name": sub,
                  "groups": [role], "tenant": tenant, "iat": now, "exp": now + seconds}  # fmt: skip
        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": KID})

    def __enter__(self) -> "Provider":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/.well-known/openid-configuration":
                    body: dict[str, Any] = {
                        "issuer": provider.issuer,
                        "jwks_uri": f"{provider.issuer}/jwks",
                    }
                elif self.path == "/jwks":
                    body = {"keys": [provider._jwk]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
