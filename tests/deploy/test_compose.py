"""docker-compose.yml: valid against the Compose specification, and shaped as
the spec's "Running it" says (Redis, PostgreSQL, a one-shot migration, two API
replicas behind a proxy configured for SSE, the two worker pools, rq-dashboard).

No Docker engine is needed: the file is checked, not run.
"""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML comes with uvicorn[standard]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
IMAGE = "escalation-mode:local"
WORKERS = {"worker-assessments": "assessments", "worker-notifications": "notifications"}
APP_SERVICES = ("migrate", "api-1", "api-2", *WORKERS, "rq-dashboard")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def test_validates_against_the_compose_specification() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_has_exactly_the_services_of_the_production_shape(services: dict[str, Any]) -> None:
    assert set(services) == {"redis", "postgres", "proxy", *APP_SERVICES}
    assert services["redis"]["image"].startswith("redis:7")
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["proxy"]["image"].startswith("nginx:1.27")


def test_every_project_process_runs_the_one_image_with_the_shared_environment(
    services: dict[str, Any],
) -> None:
    for name in APP_SERVICES:
        service = services[name]
        assert (service["image"], service["build"]) == (IMAGE, "."), name
        env = service["environment"]
        assert env["ESCALATIONS_JWT_SECRET"] == "${ESCALATIONS_JWT_SECRET:?set it}", name
        assert env["ESCALATIONS_REDIS_URL"] == "redis://redis:6379/0", name
        assert env["ESCALATIONS_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert "@postgres:5432/" in env["ESCALATIONS_DATABASE_URL"], name


def test_postgres_has_a_healthcheck_and_migrate_is_a_one_shot_after_it(
    services: dict[str, Any],
) -> None:
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    migrate = services["migrate"]
    assert migrate["command"] == ["escalations", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}


@pytest.mark.parametrize("name", ["api-1", "api-2", *WORKERS])
def test_api_and_workers_start_after_the_migration_and_redis(
    services: dict[str, Any], name: str
) -> None:
    depends_on = services[name]["depends_on"]
    assert depends_on["migrate"] == {"condition": "service_completed_successfully"}
    assert "redis" in depends_on


def test_two_api_replicas_serve_the_default_command(services: dict[str, Any]) -> None:
    for name in ("api-1", "api-2"):
        assert "command" not in services[name]  # the image's `escalations api` on :8000
        assert "ports" not in services[name]  # reached through the proxy only
        assert services[name]["environment"]["FORWARDED_ALLOW_IPS"] == "*"


def test_one_service_per_worker_pool_each_scalable(services: dict[str, Any]) -> None:
    for name, queue in WORKERS.items():
        worker = services[name]
        # No fixed --name: replicas made by `--scale` would take each other's name over.
        assert worker["command"] == ["escalations", "worker", "--queues", queue]
        assert worker["healthcheck"] == {"disable": True}  # it serves no /healthz
        assert "container_name" not in worker


def test_proxy_fronts_both_replicas_on_8080_with_the_repo_config(
    services: dict[str, Any],
) -> None:
    proxy = services["proxy"]
    assert proxy["ports"] == ["8080:80"]
    assert set(proxy["depends_on"]) == {"api-1", "api-2"}
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in proxy["volumes"]}
    assert mounts == {
        "./deploy/nginx.conf": "/etc/nginx/nginx.conf",
        "./deploy/nginx-upstreams.conf": "/etc/nginx/nginx-upstreams.conf",
    }
    for source in mounts:
        assert (ROOT / source).is_file(), source
    upstreams = (ROOT / "deploy/nginx-upstreams.conf").read_text()
    assert "server api-1:8000;" in upstreams and "server api-2:8000;" in upstreams


def test_rq_dashboard_watches_the_compose_redis(services: dict[str, Any]) -> None:
    dashboard = services["rq-dashboard"]
    assert dashboard["command"] == [
        "rq-dashboard", "-b", "0.0.0.0", "-p", "9181", "-u", "redis://redis:6379/0",
    ]  # fmt: skip
    assert [port.rsplit(":", 2)[-2:] for port in dashboard["ports"]] == [["9181", "9181"]]
    assert "redis" in dashboard["depends_on"]


def test_image_installs_the_ops_extra_and_runs_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert 'pip install ".[ops]"' in dockerfile
    assert "\nUSER escalations\n" in dockerfile
    assert "/healthz" in dockerfile.split("HEALTHCHECK", 1)[1]
