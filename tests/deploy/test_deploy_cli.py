"""`backoffice deploy`: the dry run needs no cluster; without a kubeconfig the commands
say what to do and exit non-zero."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from services.suite.cli import app
from services.suite.registry import SERVICES

runner = CliRunner()


def test_dry_run_prints_the_plan_in_order(kubectl: str) -> None:
    result = runner.invoke(
        app,
        ["deploy", "--overlay", "production", "--dry-run", "--image", "registry.example/backoffice:1.2.3"],
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    steps = [line for line in out.splitlines() if line.startswith("# step")]
    assert [s.split(":")[0] for s in steps] == ["# step 1", "# step 2", "# step 3"]
    first, job, rollout = out.split("# step ")[1:]
    assert "Cluster/backoffice-db" in first and "ConfigMap/backoffice-config" in first
    assert "Job/backoffice-migrate" in job
    assert all(f"Deployment/{name}" in rollout for name in SERVICES)
    docs: list[Any] = [d for d in yaml.safe_load_all(out) if d]
    images = {
        c["image"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example/backoffice:1.2.3"}
    assert "nothing was applied" in result.stderr


def test_unknown_overlay_is_explained(kubectl: str) -> None:
    result = runner.invoke(app, ["deploy", "--overlay", "staging", "--dry-run"])
    assert result.exit_code == 2
    assert "choose from dev, production" in result.stderr


@pytest.mark.parametrize("args", [["deploy", "--overlay", "dev"], ["deploy", "status"]])
def test_no_kubeconfig_is_a_clear_error(
    kubectl: str, args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "no Kubernetes cluster is configured" in message
    assert "KUBECONFIG" in message
    assert "Traceback" not in result.output
