"""Real processes for end-to-end tests and benchmarks: free ports, a private
``redis-server``, ``escalations api`` replicas, and readiness with deadlines.

Every process leads its own process group and writes its output to a log file,
so ``Proc.stop()`` kills it with any children and a failure can show the log.
Nothing here touches the machine's shared Redis: ``start_redis`` always starts
a new server on the port it is given (non-persistent unless asked). No plain sleeps: every
wait polls a condition until a deadline.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from testkit import log_leaks

HOST = "127.0.0.1"
POLL_SECONDS = 0.05
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
LOG_TAIL_CHARS = 4000


class ProcessError(RuntimeError):
    """A process exited early or did not become ready before its deadline."""


@dataclass
class Proc:
    """A started process (leader of its own group), its port and where its output goes."""

    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log_path: Path
    #: How much of the log ``log_leaks`` has read (on each stop or kill).
    _log_checked: int = field(default=0, repr=False)

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM the whole group, SIGKILL it after ``timeout``. Idempotent; a
        leader that already exited (and was reaped) is left alone, since its
        group id may since belong to someone else. Then its log is checked for
        tokens and secrets (``testkit/log_leaks.py``)."""
        if self.running:
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._check_log()

    def kill(self) -> None:
        """SIGKILL the whole group now and reap the leader; check its log."""
        if self.running:
            self._signal_group(signal.SIGKILL)
        self.popen.wait(STOP_TIMEOUT_SECONDS)
        self._check_log()

    def _check_log(self) -> None:
        text = self.log_text()
        for line in text[self._log_checked :].splitlines():
            log_leaks.report(f"process log {self.log_path.name}", line)
        self._log_checked = len(text)

    def log_text(self) -> str:
        """Everything the process has written so far ("" if the log is gone)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return self.log_text()[-chars:]

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def spawn(
    name: str, argv: list[str], *, port: int, log_dir: Path, env: dict[str, str] | None = None
) -> Proc:
    """Start ``argv`` (to serve on ``port``) in a new session, so in its own
    process group; stdout and stderr go to ``log_dir/{name}.log``."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return Proc(name=name, port=port, popen=popen, log_path=log_path)


def wait_until(
    check: Callable[[], bool], *, proc: Proc, what: str, timeout: float = READY_TIMEOUT_SECONDS
) -> None:
    """Poll ``check`` until it is true. Raises ``ProcessError`` (with the log tail)
    if ``proc`` exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.running:
            raise ProcessError(
                f"{proc.name} exited ({proc.popen.returncode}) before {what}:\n{proc.log_tail()}"
            )
        if check():
            return
        time.sleep(POLL_SECONDS)
    raise ProcessError(f"{proc.name}: no {what} within {timeout} s:\n{proc.log_tail()}")


def poll(check: Callable[[], bool], *, timeout: float, what: str) -> float:
    """Poll ``check`` until it is true; returns the seconds it took. Raises
    ``AssertionError`` naming ``what`` after ``timeout`` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"no {what} within {timeout} s")


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, their children, …), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                # The command name may hold spaces: the fields after ")" are fixed.
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(stat[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie (one that has exited and waits only for its parent's wait)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def rss_kib(pid: int) -> int:
    """The process's resident set (``VmRSS`` in /proc/PID/status), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# --- redis-server ----------------------------------------------------------------


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ProcessError("redis-server is not on PATH")
    return binary


def start_redis(
    port: int, *, log_dir: Path, data_dir: Path | None = None, replica_of: int | None = None
) -> Proc:
    """A private redis-server on ``HOST:port``, answering PING on return. In memory
    only, unless ``data_dir`` is given: then every write is appended to a file
    there, so a server restarted on the same ``data_dir`` keeps its keys. With
    ``replica_of``, a replica of the server on that port."""
    persistence = ["--save", "", "--appendonly", "no"]
    if data_dir is not None:
        persistence = ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
        persistence += ["--dir", str(data_dir)]
    if replica_of is not None:  # a replica loads the primary's snapshot from a file in --dir
        persistence += ["--replicaof", HOST, str(replica_of), "--dir", str(data_dir or log_dir)]
    argv = [redis_server_binary(), "--bind", HOST, "--port", str(port), *persistence]
    proc = spawn(f"redis-{port}", argv, port=port, log_dir=log_dir)
    try:
        wait_until(lambda: _redis_pings(port), proc=proc, what="PONG")
    except BaseException:
        proc.stop()
        raise
    return proc


def _redis_pings(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


# --- escalations api -------------------------------------------------------------


#: Abuse limits no test or benchmark reaches (they create, claim and stream fast as
#: one user); the limits' own tests, and bench/soak.py, pass their own values.
GENEROUS_LIMITS = {
    "rate_limit_creates": "1000000/minute",
    "rate_limit_claims": "1000000/minute",
    "rate_limit_stream_opens": "1000000/minute",
    "rate_limit_auth_failures": "1000000/minute",
    "rate_limit_webhook_sends": "1000000/minute",
    "max_streams_per_user": "1000000",
}


def api_env(*, database_url: str, redis_url: str, jwt_secret: str, **extra: str) -> dict[str, str]:
    """The environment for a replica: this process's, except that the app's
    settings (``ESCALATIONS_*``) are exactly the ones given here, none inherited.

    ``extra`` keys are setting names, e.g. ``claim_lock_enabled="false"``; the
    abuse limits default to ``GENEROUS_LIMITS``.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("ESCALATIONS_")}
    env.update(
        ESCALATIONS_DATABASE_URL=database_url,
        ESCALATIONS_REDIS_URL=redis_url,
        ESCALATIONS_JWT_SECRET=jwt_secret,
        ESCALATIONS_LOG_LEVEL="WARNING",
    )
    settings = {**GENEROUS_LIMITS, **extra}
    env.update({f"ESCALATIONS_{key.upper()}": value for key, value in settings.items()})
    return env


def escalations_binary() -> str:
    """The ``escalations`` script next to this interpreter (the venv's), else PATH's."""
    beside = Path(sys.executable).with_name("escalations")
    return str(beside) if beside.exists() else (shutil.which("escalations") or "escalations")


def start_api(port: int, *, env: dict[str, str], log_dir: Path) -> Proc:
    """An ``escalations api`` replica on ``HOST:port``, answering /readyz 200 on return."""
    argv = [escalations_binary(), "api", "--host", HOST, "--port", str(port)]
    proc = spawn(f"api-{port}", argv, port=port, log_dir=log_dir, env=env)
    try:
        wait_ready(base_url(port), proc=proc)
    except BaseException:
        proc.stop()
        raise
    return proc


def base_url(port: int) -> str:
    return f"http://{HOST}:{port}"


def redis_url(port: int, db: int = 0) -> str:
    return f"redis://{HOST}:{port}/{db}"


def wait_ready(url: str, *, proc: Proc, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Poll ``{url}/readyz`` until 200 (database and Redis answer)."""
    wait_until(
        lambda: _answers_200(f"{url}/readyz"), proc=proc, what="/readyz 200", timeout=timeout
    )


def _answers_200(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    """Stop ``proc`` (its whole process group) on exit."""
    try:
        yield proc
    finally:
        proc.stop()
