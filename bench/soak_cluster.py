"""The soak's processes and the faults done to them: a private redis-server, a
fresh PostgreSQL database, the OpenAI stub failing a share of calls, two
``escalations api`` replicas and two ``escalations worker`` processes.

Built on ``testkit/procs.py`` and ``testkit/workers.py``. Every fault is
recorded as a :class:`Window` (from the moment it is done until what it broke
answers again), so the checks can tell expected failures from real ones.
Blocking starts (they poll for readiness) are run by the caller in a thread.
"""

import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis

from bench.common import REPO
from shared.core.redis_client import make_redis
from testkit.procs import (
    Proc,
    api_env,
    base_url,
    free_port,
    redis_url,
    spawn,
    start_api,
    start_redis,
    wait_until,
)
from testkit.workers import start_worker

STUB_READY_SECONDS = 15.0
#: A process a SIGKILLed worker left behind (e.g. a forked scheduler) must be gone by then.
ORPHAN_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.1

#: Generous abuse limits: the soak's users are many requests from few tokens.
GENEROUS_LIMITS = {
    "rate_limit_creates": "100000/minute",
    "rate_limit_claims": "100000/minute",
    "rate_limit_stream_opens": "100000/minute",
    "rate_limit_auth_failures": "100000/minute",
    "max_streams_per_user": "1000",
}


@dataclass(frozen=True)
class Window:
    """A fault: ``kind`` (``redis``, ``replica``, ``worker``), what it hit, and
    the time (``time.monotonic``) it began and ended (what it broke answered
    again; ``None`` while it lasts)."""

    kind: str
    target: str
    start: float
    end: float | None


@dataclass(frozen=True)
class Exit:
    """A replica or worker that ended although the soak neither stopped nor killed
    it: its name, pid, exit code and last log line."""

    name: str
    pid: int
    code: int | None
    last_line: str


@dataclass
class Cluster:
    """Everything the soak runs against; ``windows`` records each fault."""

    log_dir: Path
    database_url: str
    secret: str
    replay_limit: int
    settings: dict[str, str]
    redis: Proc | None = None
    stub: Proc | None = None
    replicas: list[Proc] = field(default_factory=list)
    retired: list[Proc] = field(default_factory=list)  # killed replicas and workers
    workers: list[Proc] = field(default_factory=list)
    #: Members of each SIGKILLed worker's process group left running at the kill:
    #: (pid, process group id), so clean-up ends exactly those.
    left_behind: list[tuple[int, int]] = field(default_factory=list)
    #: Of those, the ones still running ``ORPHAN_GRACE_SECONDS`` after their kill.
    outlived: list[tuple[int, int]] = field(default_factory=list)
    workers_killed: int = 0
    windows: list[Window] = field(default_factory=list)
    #: Replicas and workers found ended unasked (see ``note_exits``).
    exits: list[Exit] = field(default_factory=list)
    redis_port: int = 0
    worker_count: int = 0

    # --- start -------------------------------------------------------------------

    def start(self, *, replicas: int, workers: int, failure_rate: float) -> None:
        self.redis_port = free_port()
        self.redis = start_redis(self.redis_port, log_dir=self.log_dir)
        self.stub = start_stub(failure_rate, log_dir=self.log_dir)
        self.replicas = [start_api(free_port(), env=self.env(), log_dir=self.log_dir)]
        self.replicas += [
            start_api(free_port(), env=self.env(), log_dir=self.log_dir)
            for _ in range(replicas - 1)
        ]
        for _ in range(workers):
            self.workers.append(self.start_worker())

    def env(self) -> dict[str, str]:
        assert self.stub is not None
        return api_env(
            database_url=self.database_url,
            redis_url=redis_url(self.redis_port),
            jwt_secret=self.secret,
            assessor="openai",
            llm_base_url=f"{base_url(self.stub.port)}/v1",
            llm_model="stub",
            event_replay_limit=str(self.replay_limit),
            # The soak's webhook receivers listen on 127.0.0.1 (bench/soak_webhooks.py).
            webhook_allow_private_networks="true",
            max_webhooks_per_org="25",
            **GENEROUS_LIMITS,
            **self.settings,
        )

    def start_worker(self) -> Proc:
        self.worker_count += 1
        name = f"soak-worker-{self.worker_count}"
        with self.redis_client() as client:
            return start_worker(name, env=self.env(), log_dir=self.log_dir, redis=client)

    @contextlib.contextmanager
    def redis_client(self):  # type: ignore[no-untyped-def]
        client: Redis = make_redis(redis_url(self.redis_port))
        try:
            yield client
        finally:
            client.close()

    @property
    def urls(self) -> list[str]:
        return [base_url(replica.port) for replica in self.replicas]

    # --- watching ----------------------------------------------------------------

    def note_exits(self) -> list[Exit]:
        """Record each replica and worker that has ended though the soak did not
        stop or kill it (once each); called before every fault and at the end, so
        a process that died before the soak killed it is counted too. Returns
        every one recorded so far."""
        recorded = {exit.pid for exit in self.exits}
        # A replica the soak killed stays in ``replicas`` until its successor is up
        # (another fault may start meanwhile); it is retired, not an unasked exit.
        killed = {proc.popen.pid for proc in self.retired}
        for proc in [*self.replicas, *self.workers]:
            if not proc.running and proc.popen.pid not in recorded | killed:
                lines = proc.log_text().strip().splitlines()
                last = lines[-1][:500] if lines else ""
                self.exits.append(Exit(proc.name, proc.popen.pid, proc.popen.returncode, last))
        return list(self.exits)

    # --- faults ------------------------------------------------------------------

    def kill_worker(self) -> tuple[str, str]:
        """SIGKILL the oldest worker's own process (``kill -9 PID``, as an OOM kill
        does: its children are not signalled), then start a new one. Returns the
        names of the killed and the new worker."""
        self.note_exits()
        victim = self.workers.pop(0)
        began = time.monotonic()
        pgid = victim.popen.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pgid, signal.SIGKILL)
        victim.popen.wait(10)
        self.workers_killed += 1
        left = [member for member in _process_groups() if member[1] == pgid]
        self.left_behind += left
        self.retired.append(victim)
        replacement = self.start_worker()
        self.workers.append(replacement)
        self.windows.append(Window("worker", victim.name, began, time.monotonic()))
        self.outlived += _still_running(left, deadline=began + ORPHAN_GRACE_SECONDS)
        return victim.name, replacement.name

    def kill_replica(self, index: int, *, down_seconds: float, sleep) -> None:  # type: ignore[no-untyped-def]
        """SIGKILL replica ``index``; ``down_seconds`` later start a new one on the
        same port (its log kept beside). ``sleep`` waits (the caller's clock)."""
        self.note_exits()
        victim = self.replicas[index]
        began = time.monotonic()
        self.windows.append(Window("replica", victim.name, began, None))
        victim.kill()
        kept = victim.log_path.with_name(f"{victim.name}-killed.log")
        victim.log_path.rename(kept)
        victim.log_path = kept
        self.retired.append(victim)
        sleep(down_seconds)
        self.replicas[index] = start_api(victim.port, env=self.env(), log_dir=self.log_dir)
        self._close_window("replica", victim.name)

    def redis_outage(self, *, down_seconds: float, sleep) -> None:  # type: ignore[no-untyped-def]
        """Stop Redis; ``down_seconds`` later start a new, empty one on the same port."""
        self.note_exits()
        assert self.redis is not None
        self.windows.append(Window("redis", self.redis.name, time.monotonic(), None))
        self.redis.kill()
        sleep(down_seconds)
        self.redis = start_redis(self.redis_port, log_dir=self.log_dir)
        self._close_window("redis", self.redis.name)

    def _close_window(self, kind: str, target: str) -> None:
        for index, window in enumerate(self.windows):
            if window.kind == kind and window.target == target and window.end is None:
                self.windows[index] = Window(kind, target, window.start, time.monotonic())

    # --- stop --------------------------------------------------------------------

    def orphans(self) -> list[int]:
        """Processes a SIGKILLed worker left behind that are still alive."""
        alive = set(_process_groups())
        return [pid for pid, pgid in self.left_behind if (pid, pgid) in alive]

    def stop(self) -> None:
        for proc in [*self.workers, *self.replicas, *self.retired]:
            proc.stop()
        alive = set(_process_groups())
        for pid, pgid in self.left_behind:
            if (pid, pgid) in alive:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        for proc in (self.stub, self.redis):
            if proc is not None:
                proc.stop()


def start_stub(failure_rate: float, *, log_dir: Path) -> Proc:
    """``testkit/openai_stub.py`` as a process, in ``flaky`` mode."""
    port = free_port()
    argv = [
        sys.executable, "-m", "testkit.openai_stub",
        "--port", str(port), "--mode", "flaky", "--failure-rate", str(failure_rate),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = spawn("openai-stub", argv, port=port, log_dir=log_dir, env=env)
    wait_until(
        lambda: "listening on" in proc.log_text(),
        proc=proc,
        what="stub listening",
        timeout=STUB_READY_SECONDS,
    )
    return proc


def _still_running(members: list[tuple[int, int]], *, deadline: float) -> list[tuple[int, int]]:
    """Those of ``members`` (pid, pgid) still alive at ``deadline`` (polled)."""
    while True:
        alive = set(_process_groups())
        running = [member for member in members if member in alive]
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(POLL_SECONDS)


def _process_groups() -> list[tuple[int, int]]:
    """(pid, process group id) of every process this user can see (Linux /proc)."""
    groups = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":  # a zombie is dead already
            groups.append((int(entry.name), int(fields[2])))
    return groups
