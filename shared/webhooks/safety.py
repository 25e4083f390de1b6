"""Where a webhook may point: parse its URL, resolve its host, and refuse any
address that is not on the public internet (loopback, private, link-local,
shared, reserved, multicast, unspecified), unless the deployment allows
private networks.

The check runs when a subscription is written and again before each try, on
the addresses the try then connects to (``shared.webhooks.sender`` pins them),
so a name that later resolves to an internal address is refused too.
"""

import ipaddress
import socket
import threading
from dataclasses import dataclass

import httpx

from shared.core.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Checked in this order; the first that holds names the refusal.
_NON_PUBLIC = (
    "is_loopback",
    "is_private",
    "is_link_local",
    "is_multicast",
    "is_reserved",
    "is_unspecified",
    "is_site_local",  # IPv6 fec0::/10: deprecated, still routed inside some networks
)
#: The ports a URL can name; httpx reads any integer (``:99999`` wraps modulo 65536).
PORTS = range(1, 65536)


class WebhookUrlForbidden(InvalidInput):
    code = "webhook_url_forbidden"


class WebhookUrlInvalid(InvalidInput):
    code = "invalid_webhook_url"


class WebhookUrlUnresolvable(InvalidInput):
    code = "webhook_url_unresolvable"


@dataclass(frozen=True, slots=True)
class Destination:
    """A parsed webhook URL and the address a try connects to."""

    url: httpx.URL
    address: str


def parse_url(raw: str) -> httpx.URL:
    """An absolute ``http``/``https`` URL with a host and no credentials; raises
    ``WebhookUrlInvalid``."""
    try:
        url = httpx.URL(raw)
        # httpx decodes an IDNA host (``xn--…``) only when ``host`` is read: an
        # invalid A-label raises ``idna.IDNAError``, a ``UnicodeError``, there.
        host, port = url.host, url.port
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
        raise WebhookUrlInvalid(f"Not a valid URL: {exc}.") from exc
    if url.scheme not in ("http", "https") or not host:
        raise WebhookUrlInvalid("A webhook URL is an absolute http:// or https:// URL.")
    if url.userinfo:
        raise WebhookUrlInvalid("A webhook URL may not carry a user name or password.")
    if port is not None and port not in PORTS:
        raise WebhookUrlInvalid(f"Port {port} cannot be reached: a port is 1 to 65535.")
    return url


def non_public_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public one (``"loopback"``, ``"private"``, …), or
    None when it is. An IPv6 address embedding an IPv4 one that a router would
    reach (IPv4-mapped ``::ffff:0:0/96``, 6to4 ``2002::/16``) is judged as that
    IPv4 address too."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.sixtofour is not None:
            return non_public_reason(address.sixtofour)
    for check in _NON_PUBLIC:
        if getattr(address, check, False):  # is_site_local is IPv6's alone
            return check.removeprefix("is_").replace("_", "-")
    return None if address.is_global else "non-public"


def resolve(host: str, port: int, *, timeout: float) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal is itself), within
    ``timeout`` seconds; raises ``WebhookUrlUnresolvable``. The system resolver
    has no deadline of its own, so it runs on a daemon thread we stop waiting for."""
    literal = host.strip("[]")
    try:
        return [ipaddress.ip_address(literal)]
    except ValueError:
        pass
    found: list[IPAddress] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found.extend(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
        except (OSError, UnicodeError, ValueError):
            pass
        finally:
            done.set()

    threading.Thread(target=lookup, name="webhook-dns", daemon=True).start()
    if not done.wait(timeout) or not found:
        raise WebhookUrlUnresolvable(f"The host {host!r} does not resolve.")
    return list(dict.fromkeys(found))


def check_destination(raw_url: str, *, allow_private: bool, timeout: float) -> Destination:
    """Parse ``raw_url``, resolve its host and choose the address to connect to.
    Refuses (``WebhookUrlForbidden``) when any address is non-public, unless
    ``allow_private``: a name with one public and one internal address could
    otherwise be steered to the internal one."""
    url = parse_url(raw_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = resolve(url.host, port, timeout=timeout)
    if not allow_private:
        for address in addresses:
            reason = non_public_reason(address)
            if reason is not None:
                raise WebhookUrlForbidden(
                    f"The webhook's host resolves to a {reason} address; only public"
                    " addresses may receive webhooks.",
                    reason=reason,
                )
    return Destination(url=url, address=str(addresses[0]))


def check_subscription_url(raw_url: str, *, allow_private: bool, timeout: float = 5.0) -> str:
    """The check made when a subscription is written: syntax always, the
    addresses unless private networks are allowed. Returns the URL as given."""
    if allow_private:
        parse_url(raw_url)
    else:
        check_destination(raw_url, allow_private=False, timeout=timeout)
    return raw_url
