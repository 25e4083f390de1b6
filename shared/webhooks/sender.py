"""One webhook try over HTTP, bounded in every way a receiver could stretch it.

* The host is resolved and checked (``shared.webhooks.safety``) at the start of
  the try, and the TCP connection goes to that checked address (a network
  backend for httpcore, the transport under httpx): no second lookup, so no
  DNS-rebinding window. TLS still verifies the certificate for the URL's host.
* One deadline covers resolution, connect, TLS, sending and reading: every
  socket operation gets the time that is left, so a receiver that trickles
  bytes cannot stretch the try either.
* Redirects are not followed (httpcore never does): a 3xx is an answer like any
  other non-2xx. At most ``MAX_RESPONSE_BYTES`` of the body are read; the
  connection is then dropped.

Nothing here logs; errors are short texts naming what failed, never the URL
(a Slack webhook URL is itself a secret) nor the signing secret.
"""

import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore

from shared.core.errors import InvalidInput
from shared.webhooks.safety import check_destination

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "EscalationMode-Webhooks/1"


@dataclass(frozen=True, slots=True)
class TryResult:
    """``status_code`` is the receiver's answer (None when there was none);
    ``error`` says why the try did not deliver (None on a 2xx)."""

    status_code: int | None
    error: str | None
    seconds: float
    body_bytes_read: int = 0

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def send(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    allow_private: bool,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> TryResult:
    """POST ``body`` to ``url`` once, within ``timeout`` seconds in all."""
    started = time.monotonic()
    deadline = started + timeout
    try:
        destination = check_destination(url, allow_private=allow_private, timeout=timeout)
    except InvalidInput as exc:
        return TryResult(None, exc.detail, time.monotonic() - started)
    backend = PinnedBackend(destination.address, deadline)
    request_headers = [
        ("Host", destination.url.netloc.decode("ascii")),
        ("User-Agent", USER_AGENT),
        ("Content-Type", "application/json"),
        *headers.items(),
    ]
    try:
        with httpcore.ConnectionPool(
            ssl_context=ssl_context, network_backend=backend, max_connections=1
        ) as pool:
            status, read = _post(pool, destination.url, request_headers, body, timeout)
    except httpcore.TimeoutException:
        return TryResult(None, f"timed out after {timeout:g} s", time.monotonic() - started)
    except httpcore.ConnectError as exc:
        return TryResult(None, _connect_error(exc), time.monotonic() - started)
    except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
        name = type(exc).__name__
        return TryResult(None, f"{name}: the receiver broke the exchange", _since(started))
    seconds = time.monotonic() - started
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return TryResult(status, error, seconds, read)


def _post(
    pool: httpcore.ConnectionPool,
    url: Any,
    headers: list[tuple[str, str]],
    body: bytes,
    timeout: float,
) -> tuple[int, int]:
    """Send, read at most ``MAX_RESPONSE_BYTES`` of the answer; (status, bytes read)."""
    timeouts = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
    target = httpcore.URL(
        scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
    )
    with pool.stream(
        "POST", target, headers=headers, content=body, extensions={"timeout": timeouts}
    ) as response:
        read = 0
        for chunk in response.iter_stream():
            read += len(chunk)
            if read >= MAX_RESPONSE_BYTES:
                break
        return response.status, min(read, MAX_RESPONSE_BYTES)


def _since(started: float) -> float:
    return time.monotonic() - started


def _connect_error(exc: Exception) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "certificate" in text or "ssl" in text:
        return "TLS handshake failed"
    return "could not connect"


class PinnedBackend(httpcore.NetworkBackend):
    """Connects to ``address`` whatever host the URL names, and bounds every
    operation by ``deadline`` (``time.monotonic()`` seconds)."""

    def __init__(self, address: str, deadline: float) -> None:
        self._address = address
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            self._address,
            port,
            timeout=_left(self._deadline, timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(self._deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(self._deadline, timeout, httpcore.ConnectTimeout)
        return DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, left), self._deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _left(deadline: float, timeout: float | None, error: type[Exception]) -> float:
    """The smaller of ``timeout`` and the time left; raises ``error`` when none is."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the try's deadline passed")
    return left if timeout is None else min(timeout, left)
