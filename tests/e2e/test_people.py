"""The people registry on a real replica (uvicorn, PostgreSQL, Redis): a caller
who only ever opened an event stream, with the stream cookie or a bearer token,
is known to the org, as a caller of the API is."""

from datetime import timedelta

import httpx
import pytest

from shared.auth.tokens import Principal, issue_stream_token
from shared.core.db import make_engine
from shared.core.models import Role
from shared.core.settings import Settings
from testkit.procs import Proc, api_env, base_url, redis_url
from tests.conftest import TEST_SECRET, empty_tables
from tests.e2e.conftest import StartReplica
from tests.e2e.sse import SSEClient
from tests.e2e.test_presence import token

pytestmark = pytest.mark.slow


def cookie_of(principal: Principal) -> str:
    """A stream cookie's token, minted here: this person never sent a bearer request."""
    settings = Settings(jwt_secret=TEST_SECRET)
    return issue_stream_token(principal, settings=settings, max_ttl=timedelta(minutes=5)).token


def test_a_stream_by_cookie_or_bearer_makes_its_caller_known(
    postgres_url: str, private_redis: Proc, start_replica: StartReplica
) -> None:
    engine = make_engine(postgres_url)
    empty_tables(engine)
    engine.dispose()
    api = start_replica(
        api_env(
            database_url=postgres_url,
            redis_url=redis_url(private_redis.port),
            jwt_secret=TEST_SECRET,
        )
    )
    cy = Principal(user_id="u-cy", name="Cy Senior", role=Role.senior, org_id="acme")
    with (
        SSEClient(api.port, cookie=cookie_of(cy)) as by_cookie,
        SSEClient(api.port, token=token("engineer", sub="u-zoe", org="acme")) as by_bearer,
    ):
        by_cookie.wait_ready()
        by_bearer.wait_ready()
        response = httpx.get(
            base_url(api.port) + "/api/v1/people",
            headers={"Authorization": f"Bearer {token('admin', sub='u-ada', org='acme')}"},
            timeout=10,
        )
    assert response.status_code == 200, response.text
    assert [(p["id"], p["name"], p["role"]) for p in response.json()["items"]] == [
        ("u-cy", "Cy Senior", "senior"),
        ("u-ada", "u-ada name", "admin"),
        ("u-zoe", "u-zoe name", "engineer"),
    ]
