"""Browser tests: Playwright (sync API) driving Debian's chromium against a real
stack — a private redis-server, ``escalations api`` and ``escalations worker``
over a PostgreSQL database of their own.

One stack serves every test in this package (started once, stopped when the
package is done, so its worker never touches another package's rows). Tests
stay independent by using an org of their own (:class:`Org`).

Every page a test opens is watched: console errors, uncaught page errors,
failed requests and HTTP responses >= 400 fail the test at teardown unless the
test declared them with ``problems.expect(status, path)`` (a lost claim race is
a 409, a rejected form a 422: the console handles both, and Chromium logs each
as a console error, so both the response and that log line are matched).
"""

import os
import re
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from shared.auth.tokens import issue_token
from shared.core.db import make_engine
from shared.core.models import Role
from shared.core.redis_client import make_redis
from testkit.pg import fresh_database
from testkit.procs import (
    Proc,
    api_env,
    base_url,
    free_port,
    redis_url,
    start_api,
    start_redis,
)
from testkit.workers import start_worker
from tests.conftest import PG_ADMIN_URL, TEST_SECRET, handoff_body

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("ESCALATIONS_TEST_CHROMIUM") or shutil.which("chromium") or ""
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
EXPECT_TIMEOUT_MS = 15_000
_SCRATCH = Path(tempfile.gettempdir()) / "escalations-screenshots"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

sync_api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)


# --- the stack ---------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser_database_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this package's stack alone."""
    with fresh_database(PG_ADMIN_URL, prefix="escalations_browser") as url:
        yield url


@dataclass
class Stack:
    url: str
    database_url: str
    api: Proc
    redis: Proc
    worker: Proc
    env: dict[str, str]
    log_dir: Path
    workers_started: int = 0

    def pause_worker(self) -> None:
        """SIGSTOP the worker: assessments stay pending until ``resume_worker``."""
        os.killpg(self.worker.popen.pid, signal.SIGSTOP)

    def resume_worker(self) -> None:
        os.killpg(self.worker.popen.pid, signal.SIGCONT)

    def restart_api(self) -> None:
        """Start the API again on its port (after ``api.stop()``)."""
        self.api = start_api(self.api.port, env=self.env, log_dir=self.log_dir)

    def claim_behind_the_streams_back(self, handoff_id: str, *, name: str) -> None:
        """Mark a handoff claimed in the database without an event: only a refetch shows it."""
        engine = make_engine(self.database_url)
        try:
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "UPDATE handoffs SET status = 'claimed', claimed_by_id = 'quiet', "
                        "claimed_by_name = :name, claimed_at = now(), updated_at = now() "
                        "WHERE id = :id"
                    ),
                    {"name": name, "id": handoff_id},
                )
        finally:
            engine.dispose()

    def replace_worker(self, **settings: str) -> None:
        """Stop the worker and start another with these settings changed."""
        self.worker.stop()
        env = {**self.env, **{f"ESCALATIONS_{k.upper()}": v for k, v in settings.items()}}
        self.workers_started += 1
        client = make_redis(redis_url(self.redis.port))
        try:
            self.worker = start_worker(
                f"browser-worker-{self.workers_started}",
                env=env,
                log_dir=self.log_dir,
                redis=client,
            )
        finally:
            client.close()


@pytest.fixture(scope="package")
def stack(browser_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not CHROMIUM:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    log_dir = tmp_path_factory.mktemp("browser-stack")
    redis_proc = start_redis(free_port(), log_dir=log_dir)
    env = api_env(
        database_url=browser_database_url,
        redis_url=redis_url(redis_proc.port),
        jwt_secret=TEST_SECRET,
        demo_sign_in="true",
        log_format="text",
        assessment_retries="0",
        # The worker's sweep (claim SLA, re-escalation) every second, so a level
        # with a 3-second wait moves while the test watches.
        maintenance_interval_seconds="1",
    )
    started: list[Proc] = [redis_proc]
    running: Stack | None = None
    try:
        api = start_api(free_port(), env=env, log_dir=log_dir)
        started.append(api)
        client = make_redis(redis_url(redis_proc.port))
        try:
            worker = start_worker("browser-worker-0", env=env, log_dir=log_dir, redis=client)
        finally:
            client.close()
        started.append(worker)
        running = Stack(
            url=base_url(api.port) + "/",
            database_url=browser_database_url,
            api=api,
            redis=redis_proc,
            worker=worker,
            env=env,
            log_dir=log_dir,
        )
        yield running
    finally:
        if running is not None:  # tests may have replaced the API or the worker
            started = [running.redis, running.api, running.worker]
        for proc in reversed(started):
            if proc.running:
                os.killpg(proc.popen.pid, signal.SIGCONT)  # a paused worker must hear SIGTERM
            proc.stop()


# --- orgs, tokens and API calls -------------------------------------------------------


def make_token(*, org: str, role: str, sub: str, name: str) -> str:
    return issue_token(
        secret=TEST_SECRET, sub=sub, name=name, role=Role(role), org=org, ttl=timedelta(hours=1)
    )


@dataclass
class Org:
    """An org of this test's own, and API calls in it as any of its users."""

    id: str
    api_url: str
    users: dict[str, tuple[str, str, str]] = field(
        default_factory=dict
    )  # sub → (role, name, token)

    def token(self, role: str, sub: str, name: str) -> str:
        token = make_token(org=self.id, role=role, sub=sub, name=name)
        self.users[sub] = (role, name, token)
        return token

    def call(self, sub: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = self.users[sub][2]
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{self.api_url}api/v1/{path}", headers=headers, timeout=10, **kwargs
        )

    def create(self, sub: str, session_id: str, **overrides: Any) -> dict[str, Any]:
        snapshot = overrides.pop("snapshot", {})
        body = handoff_body(session_id, **overrides)
        body["snapshot"] = {**body["snapshot"], **snapshot}  # type: ignore[dict-item]
        response = self.call(sub, "POST", "handoffs", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def get(self, sub: str, handoff_id: str) -> dict[str, Any]:
        response = self.call(sub, "GET", f"handoffs/{handoff_id}")
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def org(stack: Stack) -> Org:
    return Org(id=f"org-{uuid.uuid4().hex[:8]}", api_url=stack.url)


# --- the browser and watched pages -------------------------------------------------------


@pytest.fixture(scope="package")
def browser(stack: Stack) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Problems:
    """What went wrong on the pages of one test, minus what the test expected."""

    expected: list[tuple[int, str]] = field(default_factory=list)
    seen_expected: list[tuple[int, str]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    outage: bool = False

    def expect(self, status: int, path: str) -> None:
        """Responses with ``status`` to URLs whose path ends with ``path`` are fine."""
        self.expected.append((status, path))

    def expect_stream_outage(self) -> None:
        """The API is being stopped on purpose: the event stream's failed reconnects
        (refused connections, logged by Chromium) are expected, and so is a refused
        connection of any other API call the console makes meanwhile (its presence
        poll runs every 15 s and on focus, whenever that falls)."""
        self.outage = True

    def _outage_noise(self, url: str, failure: str = "") -> bool:
        if not self.outage:
            return False
        path = httpx.URL(url).path
        refused = path.startswith("/api/v1/") and "ERR_CONNECTION_REFUSED" in failure
        return path == "/api/v1/events" or refused

    @staticmethod
    def _aborted_by_navigation(request: Any) -> bool:
        """The console closes its own stream on reload, navigation and sign-out
        (``EventSource.close()`` on ``pagehide``), and a navigation (a test's own
        ``reload``) cancels whatever read is in flight then: the favicon, or a
        poll the console runs on its own clock or on focus (presence, teams).
        Chromium reports each as an aborted request. The console never aborts a
        request itself, so an aborted GET can only be that; an aborted write, or
        any other failure of a read, still counts."""
        path = httpx.URL(request.url).path
        read = request.method == "GET" and path.startswith("/api/v1/")
        ours = read or path == "/console/favicon.svg"
        return ours and request.failure == "net::ERR_ABORTED"

    def _allowed(self, status: int, url: str) -> bool:
        path = httpx.URL(url).path
        return any(status == s and path.endswith(p) for s, p in self.expected)

    def on_response(self, response: Any) -> None:
        if response.status < 400:
            return
        if self._allowed(response.status, response.url):
            self.seen_expected.append((response.status, httpx.URL(response.url).path))
        else:
            self.unexpected.append(
                f"HTTP {response.status} {response.request.method} {response.url}"
            )

    def on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        failed = re.match(r"Failed to load resource: .* status of (\d+)", message.text)
        url = (message.location or {}).get("url", "")
        if failed and self._allowed(int(failed.group(1)), url):
            return
        if self._outage_noise(url, message.text) or (
            self.outage and "api/v1/events" in message.text
        ):
            return
        self.unexpected.append(f"console error: {message.text} ({url})")

    def on_page_error(self, error: Any) -> None:
        self.unexpected.append(f"page error: {error}")

    def on_request_failed(self, request: Any) -> None:
        failure = request.failure or ""
        if self._outage_noise(request.url, failure) or self._aborted_by_navigation(request):
            return
        self.unexpected.append(f"request failed: {request.method} {request.url} {request.failure}")

    def watch(self, page: Any) -> None:
        page.on("response", self.on_response)
        page.on("console", self.on_console)
        page.on("pageerror", self.on_page_error)
        page.on("requestfailed", self.on_request_failed)

    def unwatch(self, page: Any) -> None:
        page.remove_listener("response", self.on_response)
        page.remove_listener("console", self.on_console)
        page.remove_listener("pageerror", self.on_page_error)
        page.remove_listener("requestfailed", self.on_request_failed)


@pytest.fixture
def problems() -> Problems:
    return Problems()


OpenConsole = Callable[..., Any]


@pytest.fixture
def console(stack: Stack, browser: Any, problems: Problems) -> Iterator[OpenConsole]:
    """``console(token)`` → a signed-in page (own browser context) on the console,
    its event stream live; ``console(None)`` → the sign-in page. Asserts at
    teardown that no page had a problem the test did not expect."""
    contexts: list[Any] = []
    pages: list[Any] = []

    def open_console(
        token: str | None, *, viewport: tuple[int, int] = (1280, 860), path: str = ""
    ) -> Any:
        context = browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]},
            device_scale_factor=1,
            reduced_motion="reduce",
        )
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        problems.watch(page)
        page.goto(stack.url + path)
        if token is not None:
            sign_in(page, token)
        return page

    try:
        yield open_console
        for page in pages:  # stop watching before closing: closing aborts the stream
            problems.unwatch(page)
        assert problems.unexpected == [], "\n".join(problems.unexpected)
    finally:
        for context in contexts:
            context.close()


def sign_in(page: Any, token: str) -> None:
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in", exact=True).click()
    wait_live(page)


def wait_live(page: Any) -> None:
    """Until the stream is live and, for seniors, the queue is loaded."""
    sync_api.expect(page.locator("body")).to_have_attribute("data-stream", "live")
    role = page.locator(".user-role").text_content()
    if role in ("senior", "admin"):
        sync_api.expect(page.locator("body")).to_have_attribute("data-queue", "loaded")


def reload(page: Any) -> None:
    page.reload()
    wait_live(page)


def pump_until(page: Any, check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    """Let Playwright dispatch events (route handlers run then) until ``check()``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        page.evaluate("() => new Promise((resolve) => requestAnimationFrame(resolve))")


def set_hidden(page: Any, hidden: bool) -> None:
    """Pretend the tab is hidden (or shown again): what a background tab reports."""
    page.evaluate(
        """(hidden) => {
            Object.defineProperty(document, "visibilityState", {
                configurable: true, get: () => (hidden ? "hidden" : "visible") });
            Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def screenshot(page: Any, name: str) -> Path:
    """Saved under docs/screenshots/ with ESCALATIONS_UPDATE_SCREENSHOTS=1 (to refresh
    the README's pictures), else in a temporary folder."""
    folder = SCREENSHOTS if os.environ.get("ESCALATIONS_UPDATE_SCREENSHOTS") else _SCRATCH
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.evaluate("() => document.getElementById('toasts').replaceChildren()")
    page.screenshot(path=str(path), full_page=False)
    return path
