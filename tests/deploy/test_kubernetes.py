"""deploy/kubernetes: every manifest validates against the Kubernetes schemas
(kubernetes-validate, offline, strict), and the settings that make SSE, graceful
shutdown and scaling work are there and agree with the code."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shared.core import keys
from shared.core.settings import Settings

MANIFESTS = Path(__file__).parents[2] / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"  # the oldest with the preStop `sleep` action we use
NOT_KUBERNETES_SCHEMAS = {"kustomization.yaml", "keda-scaledobject.yaml"}  # kustomize, a CRD


def _documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc]


def _applied() -> list[dict[str, Any]]:
    """What `kubectl apply -k deploy/kubernetes` applies (before kustomize's edits)."""
    kustomization = _documents("kustomization.yaml")[0]
    return [doc for name in kustomization["resources"] for doc in _documents(name)]


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _applied() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _container(deployment: str) -> dict[str, Any]:
    return _one("Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(
    "name", sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name not in NOT_KUBERNETES_SCHEMAS)
)
@pytest.mark.parametrize("version", [KUBERNETES_VERSION, kubernetes_validate.latest_version()])
def test_manifest_validates_against_the_kubernetes_schemas(name: str, version: str) -> None:
    for document in _documents(name):
        kubernetes_validate.validate(document, version, strict=True)


def test_kustomization_lists_every_manifest_that_exists() -> None:
    resources = _documents("kustomization.yaml")[0]["resources"]
    assert all((MANIFESTS / name).exists() for name in resources)
    assert "secret.example.yaml" not in resources  # secrets are made by the operator


def test_api_probes_and_shutdown_let_sse_clients_move() -> None:
    container = _container("escalations-api")
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = _one("Deployment", "escalations-api")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    uvicorn_graceful_shutdown = 10  # services/cli.py
    assert grace >= pre_stop + uvicorn_graceful_shutdown + 5


def test_ingress_does_not_buffer_or_time_out_streams() -> None:
    annotations = _one("Ingress", "escalations")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    heartbeat = Settings.model_fields["sse_ping_seconds"].default
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 10 * heartbeat


POOLS = {name: f"escalations-worker-{name}" for name in keys.WORKER_QUEUES}


def test_each_worker_pool_serves_its_queue_alone() -> None:
    for queue, deployment in POOLS.items():
        command = _container(deployment)["command"]
        assert command[:2] == ["escalations", "worker"]
        assert command[command.index("--queues") + 1] == queue
    workers = [
        d for d in _applied() if d["kind"] == "Deployment" and "worker" in d["metadata"]["name"]
    ]
    assert sorted(d["metadata"]["name"] for d in workers) == sorted(POOLS.values())


def test_each_worker_finishes_its_job_or_try_before_it_is_killed() -> None:
    def grace(deployment: str) -> int:
        spec = _one("Deployment", deployment)["spec"]["template"]["spec"]
        return int(spec["terminationGracePeriodSeconds"])

    job_timeout = Settings.model_fields["assessment_job_timeout_seconds"].default
    assert grace(POOLS[keys.ASSESSMENTS_QUEUE]) > job_timeout
    try_timeout = Settings.model_fields["webhook_timeout_seconds"].default
    assert grace(POOLS[keys.NOTIFICATIONS_QUEUE]) > try_timeout + 5


def test_every_autoscaler_and_budget_targets_a_deployment_that_exists() -> None:
    deployments = {
        d["metadata"]["name"]: d["spec"]["selector"]["matchLabels"]
        for d in _applied()
        if d["kind"] == "Deployment"
    }
    for doc in _applied():
        if doc["kind"] == "HorizontalPodAutoscaler":
            assert doc["spec"]["scaleTargetRef"]["name"] in deployments
        if doc["kind"] == "PodDisruptionBudget":
            assert doc["spec"]["selector"]["matchLabels"] in deployments.values()


def test_each_pool_scales_on_its_own_queue() -> None:
    keda = {
        doc["spec"]["scaleTargetRef"]["name"]: doc for doc in _documents("keda-scaledobject.yaml")
    }
    for queue, deployment in POOLS.items():
        external = _one("HorizontalPodAutoscaler", deployment)["spec"]["metrics"][0]["external"]
        assert external["metric"]["name"] == "escalations_queue_depth"
        assert external["metric"]["selector"]["matchLabels"] == {"queue": queue}
        trigger = keda[deployment]["spec"]["triggers"][0]["metadata"]
        assert trigger["listName"] == f"rq:queue:{queue}"
        _one("PodDisruptionBudget", deployment)


def test_config_names_only_settings_that_exist() -> None:
    data = _one("ConfigMap", "escalations")["data"]
    fields = {f"ESCALATIONS_{name.upper()}" for name in Settings.model_fields}
    unknown = {key for key in data if key.startswith("ESCALATIONS_")} - fields
    assert unknown == set()
    secret_keys = _documents("secret.example.yaml")[0]["stringData"]
    assert set(secret_keys) <= fields
