"""The web admin console's own Deployment: `backoffice console` in a pod restricted like the
gateway's, probed over HTTP on a path that needs no sign-in, reachable only from the ingress,
pointed at every service of the suite (by the gateway's settings) and admitted by them; the
development sign-in off in production, where tokens come from the identity provider."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import kubernetes_validate
import pytest

from libs.common.config import DEFAULT_PORTS, Settings
from services.console.app import Console
from services.console.clients import Backends
from services.gateway.cli import GatewaySettings
from services.suite.registry import SERVICES
from tests.deploy.conftest import OVERLAYS
from tests.deploy.test_manifests import KUBERNETES_VERSION

Rendered = dict[str, list[dict[str, Any]]]
PROBES = ("readinessProbe", "livenessProbe", "startupProbe")


def _named(rendered: Rendered, overlay: str, kind: str, name: str = "console") -> dict[str, Any]:
    (found,) = [o for o in rendered[overlay] if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _pod(rendered: Rendered, overlay: str, name: str = "console") -> dict[str, Any]:
    pod: dict[str, Any] = _named(rendered, overlay, "Deployment", name)["spec"]["template"]["spec"]
    return pod


def _config(rendered: Rendered, overlay: str) -> dict[str, str]:
    (config,) = (
        o
        for o in rendered[overlay]
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("backoffice-config")
    )
    return dict(config["data"])


def _settings_in_pod(
    rendered: Rendered, overlay: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Settings, GatewaySettings]:
    """The settings `backoffice console` reads in the pod: the ConfigMap, then the container's env."""
    (container,) = _pod(rendered, overlay)["containers"]
    assert container["envFrom"][0]["configMapRef"]["name"].startswith("backoffice-config-")
    env = {**_config(rendered, overlay), **{e["name"]: e["value"] for e in container["env"]}}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(), GatewaySettings()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_console_objects_validate_against_the_kubernetes_schema(rendered: Rendered, overlay: str) -> None:
    kinds = set()
    for obj in rendered[overlay]:
        if obj["metadata"]["name"].startswith("console"):
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            kinds.add(obj["kind"])
    assert kinds == {
        "ServiceAccount",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_console_deployment(rendered: Rendered, overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = _named(rendered, overlay, "Deployment")
    pod = _pod(rendered, overlay)
    (container,) = pod["containers"]
    assert container["command"] == ["backoffice"]
    assert container["args"] == ["console"]
    settings, gateway_settings = _settings_in_pod(rendered, overlay, monkeypatch)
    assert settings.console_port == Settings.model_fields["console_port"].default == 8081
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": settings.console_port}
    assert settings.host == "0.0.0.0"
    for probe in PROBES:
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    # The same image as every other workload of the suite.
    (gateway,) = _pod(rendered, overlay, "gateway")["containers"]
    assert container["image"] == gateway["image"]
    assert container["image"].startswith("registry.invalid/backoffice/backoffice:")
    # The same targets, read by the same settings, as the gateway's.
    assert set(gateway_settings.targets) == set(SERVICES)
    assert all(t.startswith("dns:///") for t in gateway_settings.targets.values())
    gateway_env = {e["name"]: e["value"] for e in gateway["env"]}
    assert gateway_settings.targets == json.loads(gateway_env["BACKOFFICE_GATEWAY_TARGETS"])
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    # The console holds no database credentials and no page-token secret.
    assert not [e for e in container["env"] if "valueFrom" in e]
    # Its cookies (the session's bearer token) go over HTTPS only, dev sign-in or not.
    assert settings.console_secure_cookies is True
    assert settings.console_secure_cookies_enabled()


def test_development_sign_in_is_off_in_production(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod = _pod(rendered, "production")
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["BACKOFFICE_CONSOLE_DEV_SIGN_IN"] == "false"
    settings, _ = _settings_in_pod(rendered, "production", monkeypatch)
    assert settings.console_dev_sign_in is False
    assert not settings.console_dev_sign_in_enabled()
    # Nothing to mint tokens with: no secret at all is mounted.
    assert not [v for v in pod["volumes"] if "secret" in v]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]


def test_development_sign_in_in_dev_has_only_the_signing_key(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod = _pod(rendered, "dev")
    (container,) = pod["containers"]
    settings, _ = _settings_in_pod(rendered, "dev", monkeypatch)
    assert settings.console_dev_sign_in_enabled()
    (secret,) = [v for v in pod["volumes"] if "secret" in v]
    assert secret["secret"]["secretName"] == "backoffice-auth-keys"
    assert secret["secret"]["items"] == [{"key": "signing-key.pem", "path": "signing-key.pem"}]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == secret["name"]]
    assert mount["readOnly"] is True
    assert f"{mount['mountPath']}/signing-key.pem" == str(settings.signing_key_path())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_console_pod_security_is_the_gateways(rendered: Rendered, overlay: str) -> None:
    pod, gateway_pod = _pod(rendered, overlay), _pod(rendered, overlay, "gateway")
    (container,) = pod["containers"]
    (gateway,) = gateway_pod["containers"]
    for key in ("securityContext", "automountServiceAccountToken", "terminationGracePeriodSeconds"):
        assert pod[key] == gateway_pod[key], key
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "console"
    assert _named(rendered, overlay, "ServiceAccount")["automountServiceAccountToken"] is False
    assert container["securityContext"] == gateway["securityContext"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["lifecycle"] == gateway["lifecycle"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound]), bound
    # The root filesystem is read-only: /tmp (an emptyDir) is the one writable place.
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {v["name"]: v for v in pod["volumes"]}["tmp"]["emptyDir"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_console_companions(rendered: Rendered, overlay: str) -> None:
    service = _named(rendered, overlay, "Service")
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "console"}
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"http": 8081}
    # Jobs live in one pod's memory (docs/console.md): keep a client on one pod.
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    assert _named(rendered, overlay, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] == "console"
    assert _named(rendered, overlay, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "console"
    }
    policy = _named(rendered, overlay, "NetworkPolicy", "console-ingress")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "console"}
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_services_admit_the_console(rendered: Rendered, overlay: str) -> None:
    policy = _named(rendered, overlay, "NetworkPolicy", "console-to-services")
    (selector,) = policy["spec"]["podSelector"]["matchExpressions"]
    assert selector["key"] == "app.kubernetes.io/name"
    assert selector["operator"] == "In"
    assert set(selector["values"]) == set(SERVICES)
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "grpc", "protocol": "TCP"}]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "console"}}}]
    # The named port is each service's gRPC port.
    for name in SERVICES:
        (container,) = _pod(rendered, overlay, name)["containers"]
        assert {p["name"]: p["containerPort"] for p in container["ports"]}["grpc"] == DEFAULT_PORTS[name]


def test_the_probed_path_answers_without_a_sign_in(rendered: Rendered) -> None:
    """The probes' path is the console's health route, not a page that redirects to sign-in."""
    (container,) = _pod(rendered, "production")["containers"]
    path = container["readinessProbe"]["httpGet"]["path"]

    async def probe() -> tuple[httpx.Response, httpx.Response]:
        targets = {name: f"127.0.0.1:{DEFAULT_PORTS[name]}" for name in SERVICES}
        console = Console(Backends(targets))
        try:
            transport = httpx.ASGITransport(app=console.asgi())
            async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
                return await client.get(path), await client.get("/")
        finally:
            await console.close()

    health, home = asyncio.run(probe())
    assert health.status_code == 200
    assert health.json() == {"status": "SERVING"}
    assert home.status_code != 200  # a page needs a sign-in; a probe on it would never pass
