"""The gateway's own Deployment: restricted like the services (test_manifests checks the
pod security of every Deployment), probed over HTTP, reachable only from the ingress, and
pointed at every service of the suite."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.gateway.cli import DEFAULT_GATEWAY_PORT, GatewaySettings
from services.suite.registry import SERVICES
from tests.deploy.conftest import OVERLAYS


def _named(rendered: dict[str, list[dict[str, Any]]], overlay: str, kind: str) -> dict[str, Any]:
    (found,) = [
        o for o in rendered[overlay] if o["kind"] == kind and o["metadata"]["name"].startswith("gateway")
    ]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_deployment(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = _named(rendered, overlay, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["gateway"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": DEFAULT_GATEWAY_PORT}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    # No database credentials and no keys: the gateway decides nothing.
    assert not [v for v in pod["volumes"] if "secret" in v]
    assert not [e for e in container.get("env", []) if "valueFrom" in e]
    env = {e["name"]: e["value"] for e in container["env"]}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = GatewaySettings()
    assert settings.port == DEFAULT_GATEWAY_PORT
    assert set(settings.targets) == set(SERVICES)
    assert all(t.startswith("dns:///") for t in settings.targets.values())
    assert json.loads(env["BACKOFFICE_GATEWAY_TARGETS"]) == settings.targets
    assert "replicas" not in deployment["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_companions(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    service = _named(rendered, overlay, "Service")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"http": DEFAULT_GATEWAY_PORT}
    assert _named(rendered, overlay, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] == "gateway"
    assert _named(rendered, overlay, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "gateway"
    }
    policy = _named(rendered, overlay, "NetworkPolicy")
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
