"""`backoffice serve` runs the gateway beside the services, prints its address like theirs,
and stops it on SIGTERM with them."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from libs.common.auth import TokenIssuer
from libs.common.config import Settings
from services.suite.registry import SERVICES
from tests.support import UNIT
from tests.test_lifecycle import flat, free_ports, serving, settings_env


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_serve_starts_the_gateway_beside_the_services(settings: Settings, tmp_path: Path) -> None:
    *ports, gateway_port = free_ports(len(SERVICES) + 1)
    env = settings_env(
        settings,
        BACKOFFICE_PORTS=json.dumps(dict(zip(SERVICES, ports, strict=True))),
        BACKOFFICE_GATEWAY_PORT=str(gateway_port),
        BACKOFFICE_SHUTDOWN_GRACE_SECONDS="2",
    )
    url = f"http://127.0.0.1:{gateway_port}"
    with serving(["serve", "--no-migrate"], env, tmp_path, tmp_path / "serve.log") as server:
        server.wait_for(lambda: _answers(f"{url}/healthz"), "the gateway to answer")
        server.wait_for(lambda: "Ctrl-C" in server.output(), "the addresses to be printed")
        assert f"gateway listening on {url}" in flat(server.output())
        token = TokenIssuer.from_settings(settings).mint("cthomas", UNIT, ["procurement.commercial"])
        created = httpx.post(
            f"{url}/v1/organisations/{UNIT}/suppliers",
            json={"displayName": "Acme Ltd"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert created.status_code == 200, created.text
        assert httpx.get(f"{url}/openapi.json", timeout=10).json()["openapi"].startswith("3.")
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait_exit() == 0, server.output()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_gateway_alone_reaches_services_at_their_targets(settings: Settings, tmp_path: Path) -> None:
    """As in its own pod: `backoffice gateway`, the services elsewhere (BACKOFFICE_GATEWAY_TARGETS)."""
    *ports, gateway_port = free_ports(len(SERVICES) + 1)
    addresses = dict(zip(SERVICES, ports, strict=True))
    services_env = settings_env(
        settings,
        BACKOFFICE_PORTS=json.dumps(addresses),
        BACKOFFICE_GATEWAY_ENABLED="false",
        BACKOFFICE_SHUTDOWN_GRACE_SECONDS="2",
    )
    gateway_env = settings_env(
        settings,
        BACKOFFICE_GATEWAY_PORT=str(gateway_port),
        BACKOFFICE_GATEWAY_TARGETS=json.dumps({n: f"127.0.0.1:{p}" for n, p in addresses.items()}),
    )
    url = f"http://127.0.0.1:{gateway_port}"
    token = TokenIssuer.from_settings(settings).mint("cthomas", UNIT, ["procurement.commercial"])
    with (
        serving(["serve", "--no-migrate"], services_env, tmp_path, tmp_path / "serve.log") as services,
        serving(["gateway"], gateway_env, tmp_path, tmp_path / "gateway.log") as gateway,
    ):
        services.wait_for(lambda: "Ctrl-C" in services.output(), "the services")
        assert "gateway listening" not in flat(services.output())
        gateway.wait_for(lambda: _answers(f"{url}/healthz"), "the gateway to answer")
        listed = httpx.get(
            f"{url}/v1/organisations/{UNIT}/suppliers",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert listed.status_code == 200, listed.text
        for process in (gateway, services):
            process.proc.send_signal(signal.SIGTERM)
            assert process.wait_exit() == 0, process.output()
