"""The suite-wide check that no token or secret reaches a log.

Two sources are watched: every log record emitted in the test process (a
handler on the root logger, installed by tests/conftest.py), and the log file
of every real process started through testkit/procs.py, read when the process
stops. What either finds is kept here until tests/conftest.py's autouse fixture
takes it at the end of the test, and fails that test.

Not a log, so not scanned: the banner ``escalations up`` prints to its user,
with ready-to-use tokens (tests/e2e/test_local_up.py scans the rest of its
output with :func:`without_up_banner`).
"""

import logging
import re
import threading

JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
#: An API key (``esk_`` and 43 URL-safe characters); its shown ``prefix`` is much shorter.
API_KEY = re.compile(r"esk_[A-Za-z0-9_-]{20,}")
#: Secrets the suite uses; tests add their own with :func:`register_secret`.
KNOWN_SECRETS: set[str] = set()
EXCERPT_CHARS = 160

_found: list[str] = []
_lock = threading.Lock()


def register_secret(secret: str) -> str:
    KNOWN_SECRETS.add(secret)
    return secret


def leaks_in(text: str) -> list[tuple[int, str]]:
    """Where ``text`` holds something shaped like a JWT, an API key or a known secret, and
    that thing shortened."""
    found = [(match.start(), match[0][:40] + "…") for match in JWT.finditer(text)]
    found += [(match.start(), match[0][:12] + "…") for match in API_KEY.finditer(text)]
    found += [
        (text.index(secret), f"secret {secret[:6]}…") for secret in KNOWN_SECRETS if secret in text
    ]
    return found


def report(source: str, text: str) -> None:
    """Record what ``text`` (from ``source``) leaks, if anything, with the text
    around the first leak."""
    leaks = leaks_in(text)
    if leaks:
        first = min(position for position, _ in leaks)
        excerpt = text[max(0, first - EXCERPT_CHARS // 2) :][:EXCERPT_CHARS]
        with _lock:
            _found.append(f"{source}: {', '.join(what for _, what in leaks)} in {excerpt!r}")


def take() -> list[str]:
    """Everything found since the last call."""
    with _lock:
        found = _found[:]
        _found.clear()
    return found


class LeakCatcher(logging.Handler):
    """Reports every record's message and traceback that leaks. Keeps the
    records' text only while it checks it."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + self._formatter.formatException(record.exc_info)
        except Exception:  # a malformed record is not this handler's business
            return
        report(f"log record {record.name}/{record.levelname}", text)


def without_up_banner(output: str) -> str:
    """``escalations up``'s output without the banner it shows its user (which
    holds tokens on purpose), from its first line to "Press Ctrl-C"."""
    start = output.find("Escalation Mode is running at ")
    end = output.find("Press Ctrl-C to stop everything.", start)
    if start < 0 or end < 0:
        return output
    return output[:start] + output[end:]
