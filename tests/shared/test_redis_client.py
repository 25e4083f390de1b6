"""How the Redis client factories read the settings: a plain URL, or the
sentinels with the URL's database, credentials and TLS for the master."""

import pytest
from pydantic import ValidationError
from redis.sentinel import SentinelConnectionPool, SentinelManagedSSLConnection

from shared.core.redis_client import async_redis_for, redis_for
from shared.core.settings import Settings
from tests.conftest import TEST_SECRET


def _settings(**values: object) -> Settings:
    return Settings(jwt_secret=TEST_SECRET, **values)  # type: ignore[arg-type]


def test_sentinels_are_read_comma_separated_or_as_json() -> None:
    assert _settings(redis_sentinels="a:26379, b:26380").redis_sentinels == ["a:26379", "b:26380"]
    assert _settings(redis_sentinels='["a:1"]').redis_sentinels == ["a:1"]
    assert _settings(redis_sentinels="").redis_sentinels == []


@pytest.mark.parametrize("bad", ["a", "a:port", ":26379"])
def test_a_sentinel_without_host_and_port_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        _settings(redis_sentinels=bad)


def test_through_sentinels_the_url_gives_database_password_and_tls() -> None:
    settings = _settings(
        redis_url="rediss://:s3cret@ignored:1/3?ssl_ca_certs=/etc/ca.crt",
        redis_sentinels="127.0.0.1:26379,127.0.0.1:26380",
        redis_sentinel_master="escalations",
        redis_sentinel_password="sentinel-pass",
    )
    client = redis_for(settings)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "escalations"
    assert pool.connection_class is SentinelManagedSSLConnection
    kwargs = pool.connection_kwargs
    assert (kwargs["db"], kwargs["password"], kwargs["ssl_ca_certs"]) == (
        3,
        "s3cret",
        "/etc/ca.crt",
    )
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380]
    assert sentinels[0].connection_pool.connection_kwargs["password"] == "sentinel-pass"
    assert async_redis_for(settings).connection_pool.service_name == "escalations"


def test_without_sentinels_the_url_is_used_as_it_is() -> None:
    client = redis_for(_settings(redis_url="redis://127.0.0.1:6390/2"))
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 2)
