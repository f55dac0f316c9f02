"""The suite as an operator runs it: the `backoffice` command in a real process, stopped
by signals, called by real clients (gRPC stubs and `buf curl` through reflection), and the
audit verifier run against a database somebody tampered with."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql
from sqlalchemy.orm import Session

from backoffice.procurement.v1 import procurement_service_pb2 as pb
from backoffice.procurement.v1 import procurement_service_pb2_grpc, supplier_pb2
from libs.common.audit import verify_chains
from libs.common.auth import TokenIssuer, TokenVerifier
from libs.common.config import Settings
from libs.common.db import make_engine
from libs.common.reference import REFERENCE_DIR
from services.procurement.persistence.models import KERNEL as PROCUREMENT_KERNEL
from tests.support import UNIT, Suite, failure, postgres_dsn, wait_until_a_transaction_waits_for_a_lock

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BACKOFFICE = BIN / "backoffice"
BUF = BIN / "buf"
COMMERCIAL = "procurement.commercial"
PROCUREMENT = "backoffice.procurement.v1.ProcurementService"
DIRECTORY = "backoffice.directory.v1.DirectoryService"
# Upper bounds so that a hang fails the test instead of stalling the run; never asserted.
START_TIMEOUT = 60.0
CALL_TIMEOUT = 60.0


# --- helpers -------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (the OS picks them; all distinct)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def clean_env(**extra: str) -> dict[str, str]:
    """The test runner's environment without any BACKOFFICE_ setting, plus `extra`; every
    listening port (the four services' and the gateway's) is a free one unless `extra`
    names it, so that no test depends on a default port being free."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKOFFICE_")}
    directory, procurement, hr, finance, gateway = free_ports(5)
    env["BACKOFFICE_PORTS"] = json.dumps(
        {"directory": directory, "procurement": procurement, "hr": hr, "finance": finance}
    )
    env["BACKOFFICE_GATEWAY_PORT"] = str(gateway)
    env["BACKOFFICE_METRICS_PORT"] = "0"
    env.update(extra)
    if "BACKOFFICE_PORTS" in extra:  # a test naming some ports still gets free ones for the rest
        env["BACKOFFICE_PORTS"] = json.dumps(
            {
                "directory": directory,
                "procurement": procurement,
                "hr": hr,
                "finance": finance,
                **json.loads(extra["BACKOFFICE_PORTS"]),
            }
        )
    return env


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = clean_env(
        BACKOFFICE_DATA_DIR=str(settings.data_dir),
        BACKOFFICE_APP_ROLE_PREFIX=settings.app_role_prefix,
        **extra,
    )
    if settings.database_url:
        env["BACKOFFICE_DATABASE_URL"] = settings.database_url
    return env


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BACKOFFICE), *args],
        env=env or clean_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT,
        check=False,
    )


def flat(text: str) -> str:
    """Rich wraps long lines at the terminal width; compare words, not line breaks."""
    return " ".join(text.split())


class Serving:
    """`backoffice serve` in its own process, its stdout and stderr in one file."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                pytest.fail(
                    f"backoffice serve exited ({self.proc.returncode}) before {what}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"gave up waiting for {what}:\n{self.output()}")
            time.sleep(0.05)

    def wait_exit(self, timeout: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"backoffice serve did not exit after the signal:\n{self.output()}")


@contextlib.contextmanager
def serving(
    args: Sequence[str], env: dict[str, str], cwd: Path, log: Path, *, command: Sequence[str] = ()
) -> Iterator[Serving]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*(command or [str(BACKOFFICE)]), *args],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield Serving(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def health_status(address: str, service: str = "") -> int | grpc.StatusCode:
    """The health of `address` asked on a new connection, or the code the call failed with."""
    with grpc.insecure_channel(address) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check  # type: ignore[attr-defined]
        try:
            response: health_pb2.HealthCheckResponse = check(
                health_pb2.HealthCheckRequest(service=service), timeout=2
            )
        except grpc.RpcError as err:
            code: grpc.StatusCode = err.code()
            return code
        return response.status


class Owner:
    """The procurement database as its owner (the superuser on PostgreSQL): outside the
    services, their roles and row-level security. Statements use `?` placeholders."""

    def __init__(self, settings: Settings) -> None:
        self.postgres = bool(settings.database_url)
        self._conn: Any
        if self.postgres:
            self._conn = psycopg.connect(postgres_dsn(settings), autocommit=True, connect_timeout=5)
            self._conn.execute("SET search_path TO procurement")
        else:
            self._conn = sqlite3.connect(
                settings.data_dir / "procurement.db", isolation_level=None, timeout=30
            )

    def execute(self, statement: str, params: Sequence[object] = ()) -> tuple[list[str], list[Any]]:
        if self.postgres:
            statement = statement.replace("?", "%s")
        cur = self._conn.execute(statement, tuple(params))
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], list(cur.fetchall())

    def close(self) -> None:
        self._conn.close()


@contextlib.contextmanager
def owner(settings: Settings) -> Iterator[Owner]:
    o = Owner(settings)
    try:
        yield o
    finally:
        o.close()


# --- 1. SIGTERM drains the call in flight ----------------------------------------------


@contextlib.contextmanager
def write_lock_held(settings: Settings) -> Iterator[Callable[[], None]]:
    """Hold the lock a supplier's creation needs until the yielded function is called."""
    conn: Any
    if settings.database_url:
        conn = psycopg.connect(postgres_dsn(settings), connect_timeout=5)
        conn.execute("LOCK TABLE procurement.audit_chain_heads IN ACCESS EXCLUSIVE MODE")
    else:
        conn = sqlite3.connect(settings.data_dir / "procurement.db", isolation_level=None, timeout=5)
        conn.execute("BEGIN IMMEDIATE")
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            conn.rollback() if settings.database_url else conn.execute("ROLLBACK")

    try:
        yield release
    finally:
        release()
        conn.close()


def wait_until_blocked_on_lock(settings: Settings, timeout: float = START_TIMEOUT) -> None:
    """Wait until the server's insert waits for our lock (PostgreSQL shows it; SQLite only
    sleeps in its busy handler, so there a short pause has to do)."""
    if not settings.database_url:
        time.sleep(0.5)
        return
    wait_until_a_transaction_waits_for_a_lock(settings, "the CreateSupplier call", timeout)


def refused_codes_until_unavailable(
    address: str, parent: str, auth: tuple[tuple[str, str], ...]
) -> list[grpc.StatusCode]:
    """Make new calls on new connections until one is refused as UNAVAILABLE (the listener
    is closed); returns the code of every refused call on the way."""
    codes: list[grpc.StatusCode] = []
    deadline = time.monotonic() + START_TIMEOUT
    while not codes or codes[-1] is not grpc.StatusCode.UNAVAILABLE:
        if time.monotonic() > deadline:
            pytest.fail(f"new calls were still taken after SIGTERM: {codes}")
        with grpc.insecure_channel(address) as fresh:
            try:
                procurement_service_pb2_grpc.ProcurementServiceStub(fresh).ListSuppliers(
                    pb.ListSuppliersRequest(parent=parent), metadata=auth, timeout=5
                )
            except grpc.RpcError as err:
                codes.append(err.code())
                continue
        time.sleep(0.05)
    return codes


def serve_env(settings: Settings, grace_seconds: int) -> tuple[dict[str, str], str, tuple[tuple[str, str]]]:
    """Environment for `backoffice serve` on free ports, the procurement address, and the
    metadata of a commercial officer of the unit."""
    directory_port, procurement_port = free_ports(2)
    env = settings_env(
        settings,
        BACKOFFICE_PORTS=json.dumps({"directory": directory_port, "procurement": procurement_port}),
        BACKOFFICE_SHUTDOWN_GRACE_SECONDS=str(grace_seconds),
        BACKOFFICE_LOG_FORMAT="json",
    )
    token = TokenIssuer.from_settings(settings).mint("cthomas", UNIT, [COMMERCIAL])
    return env, f"127.0.0.1:{procurement_port}", (("authorization", f"Bearer {token}"),)


def test_sigterm_drains_call_in_flight(settings: Settings, tmp_path: Path) -> None:
    env, address, auth = serve_env(settings, grace_seconds=10)
    parent = f"organisations/{UNIT}"
    request = pb.CreateSupplierRequest(parent=parent, supplier=supplier_pb2.Supplier(display_name="Acme Ltd"))

    with serving(["serve", "--no-migrate"], env, tmp_path, tmp_path / "serve.log") as server:
        server.wait_for(
            lambda: health_status(address) == health_pb2.HealthCheckResponse.SERVING,
            "procurement to be SERVING",
        )
        with grpc.insecure_channel(address) as channel:
            stub = procurement_service_pb2_grpc.ProcurementServiceStub(channel)
            # No warm-up call: the very first call may meet the lock (the migrations leave
            # SQLite in WAL, so no connection needs an exclusive lock to switch modes).
            with write_lock_held(settings) as release:
                in_flight = stub.CreateSupplier.future(request, metadata=auth, timeout=CALL_TIMEOUT)
                wait_until_blocked_on_lock(settings)
                assert not in_flight.done(), in_flight.exception()

                server.proc.send_signal(signal.SIGTERM)

                # New calls are refused, on new connections (gRPC may cancel one that
                # raced the listener's closing) and on the one carrying the call in flight;
                # health no longer says SERVING.
                codes = refused_codes_until_unavailable(address, parent, auth)
                # A call racing the listener's close may be cancelled or time out; none is served.
                assert set(codes) <= {
                    grpc.StatusCode.CANCELLED,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.UNAVAILABLE,
                }
                refused = failure(
                    stub.ListSuppliers, pb.ListSuppliersRequest(parent=parent), metadata=auth, timeout=5
                )
                assert refused.code is grpc.StatusCode.UNAVAILABLE, refused
                assert health_status(address) in (
                    health_pb2.HealthCheckResponse.NOT_SERVING,
                    grpc.StatusCode.UNAVAILABLE,
                )
                # The call in flight still waits for the database: the signal did not cut
                # it off, and the process waits for it.
                assert not in_flight.done(), in_flight.exception()
                assert server.proc.poll() is None

                release()
                created = in_flight.result(timeout=CALL_TIMEOUT)
        assert created.name.startswith(f"{parent}/suppliers/s-")
        assert created.display_name == "Acme Ltd"
        assert server.wait_exit() == 0, server.output()

    log = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    events = [e.get("event") for e in log]
    assert "draining" in events and events[-1] == "stopped", server.output()
    assert [
        e.get("code")
        for e in log
        if e.get("event") == "rpc" and e.get("method", "").endswith("/CreateSupplier")
    ] == ["OK"]
    # The drained call committed: the supplier is in the database.
    with owner(settings) as db:
        _, rows = db.execute(
            "SELECT display_name FROM suppliers WHERE organisation_code = ? AND id = ?",
            (UNIT, created.name.rsplit("/", 1)[1]),
        )
    assert rows == [("Acme Ltd",)]


def test_call_cut_off_by_shutdown_does_not_commit_afterwards(settings: Settings, tmp_path: Path) -> None:
    """A call still blocked when the grace period ends is cancelled for its client; its
    work must then roll back, or a client that retries would create a second supplier."""
    env, address, auth = serve_env(settings, grace_seconds=1)
    parent = f"organisations/{UNIT}"
    request = pb.CreateSupplierRequest(
        parent=parent, supplier=supplier_pb2.Supplier(display_name="Cut Off Ltd")
    )
    with serving(["serve", "--no-migrate"], env, tmp_path, tmp_path / "serve.log") as server:
        server.wait_for(
            lambda: health_status(address) == health_pb2.HealthCheckResponse.SERVING,
            "procurement to be SERVING",
        )
        with grpc.insecure_channel(address) as channel:
            stub = procurement_service_pb2_grpc.ProcurementServiceStub(channel)
            with write_lock_held(settings) as release:
                in_flight = stub.CreateSupplier.future(request, metadata=auth, timeout=CALL_TIMEOUT)
                wait_until_blocked_on_lock(settings)
                server.proc.send_signal(signal.SIGTERM)
                with pytest.raises(grpc.RpcError) as cut_off:
                    in_flight.result(timeout=CALL_TIMEOUT)
                assert cut_off.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
                time.sleep(1.0)  # let the blocked worker run on past the grace period
                release()
        assert server.wait_exit(timeout=30) == 0, server.output()
    with owner(settings) as db:
        _, rows = db.execute("SELECT display_name FROM suppliers WHERE organisation_code = ?", (UNIT,))
    assert rows == [], "the cut-off call committed after its client was told it failed"


# --- 2. The README's start command -----------------------------------------------------


def buf_curl(
    url: str,
    *,
    token: str | None,
    data: str | None,
    cache: Path,
) -> subprocess.CompletedProcess[str]:
    args = [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
    if token:
        args += ["-H", f"authorization: Bearer {token}"]
    if data is not None:
        args += ["-d", data]
    return subprocess.run(
        [*args, url],
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT,
        check=False,
        env=clean_env(BUF_CACHE_DIR=str(cache)),
    )


def test_readme_start_command_serves_and_reflection_works(tmp_path: Path) -> None:
    directory_port, procurement_port = free_ports(2)
    env = clean_env(
        BACKOFFICE_PORTS=json.dumps({"directory": directory_port, "procurement": procurement_port})
    )
    cache = tmp_path / "buf-cache"
    work = tmp_path / "checkout"
    work.mkdir()

    # Exactly the README's start command (tools/dev.py finds the project's .venv set up,
    # as the README's test command leaves it, and hands over to `backoffice serve`).
    readme_start = [sys.executable, str(ROOT / "tools" / "dev.py")]
    with serving(["serve"], env, work, tmp_path / "serve.log", command=readme_start) as server:
        server.wait_for(lambda: "procurement listening on" in server.output(), "'procurement listening on'")
        out = server.output()
        assert f"procurement listening on 127.0.0.1:{procurement_port}" in out, out
        assert f"directory listening on 127.0.0.1:{directory_port}" in out, out
        assert (work / "var" / "procurement.db").exists() and (work / "var" / "directory.db").exists()

        minted = run_cli("token", "--org", UNIT, "--role", COMMERCIAL, "--data-dir", str(work / "var"))
        assert minted.returncode == 0, minted.stderr
        token = minted.stdout.strip()

        procurement = f"http://127.0.0.1:{procurement_port}/{PROCUREMENT}"
        body = json.dumps({"parent": f"organisations/{UNIT}", "supplier": {"display_name": "Acme Ltd"}})
        created = buf_curl(f"{procurement}/CreateSupplier", token=token, data=body, cache=cache)
        assert created.returncode == 0, created.stderr
        supplier = json.loads(created.stdout)
        assert supplier["name"].startswith(f"organisations/{UNIT}/suppliers/")
        assert supplier["displayName"] == "Acme Ltd"

        listed = buf_curl(
            f"http://127.0.0.1:{directory_port}/{DIRECTORY}/ListOrganisations",
            token=token,
            data="{}",
            cache=cache,
        )
        assert listed.returncode == 0, listed.stderr
        codes = [o["code"] for o in json.loads(listed.stdout)["organisations"]]
        assert "E23000001" in codes

        anonymous = buf_curl(f"{procurement}/CreateSupplier", token=None, data=body, cache=cache)
        assert anonymous.returncode != 0
        error = json.loads(anonymous.stderr[anonymous.stderr.index("{") :])
        assert error["code"] == "unauthenticated", anonymous.stderr

        server.proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert server.wait_exit() == 0, server.output()
        assert "Traceback" not in server.output()


# --- 3. orgs list and token --------------------------------------------------------------


def police_force_area_codes() -> list[str]:
    with (REFERENCE_DIR / "police_force_areas.csv").open(newline="", encoding="utf-8") as f:
        return [row["gss_code"] for row in csv.DictReader(f)]


def test_cli_orgs_list_and_token(tmp_path: Path) -> None:
    forces = police_force_area_codes()
    assert len(forces) == 43
    everything = run_cli("orgs", "list")
    assert everything.returncode == 0, everything.stderr
    listed = set(re.findall(r"\b[EWX]\d{8}\b", everything.stdout))
    assert set(forces) <= listed
    assert {"E23000001", "E23000010", "W15000001", "W15000004", "X00000101"} <= listed

    units = run_cli("orgs", "list", "--kind", "SHARED_SERVICE_UNIT")
    assert units.returncode == 0, units.stderr
    assert set(re.findall(r"\b[EWX]\d{8}\b", units.stdout)) == {"X00000101", "X00000102", "X00000103"}
    assert run_cli("orgs", "list", "--kind", "CONSTABULARY").returncode != 0

    data_dir = tmp_path / "var"
    bad_org = run_cli("token", "--org", "NOTACODE", "--role", "x", "--data-dir", str(data_dir))
    assert bad_org.returncode != 0 and not bad_org.stdout
    assert "organisation code" in flat(bad_org.stderr)
    operator_and_payables = run_cli(
        "token",
        "--org",
        UNIT,
        "--role",
        "platform.operator",
        "--role",
        "finance.payables",
        "--data-dir",
        str(data_dir),
    )
    assert operator_and_payables.returncode != 0 and not operator_and_payables.stdout
    assert "business roles" in flat(operator_and_payables.stderr)

    good = run_cli(
        "token",
        "--org",
        UNIT,
        "--role",
        COMMERCIAL,
        "--role",
        "procurement.buyer",
        "--subject",
        "cthomas",
        "--data-dir",
        str(data_dir),
    )
    assert good.returncode == 0, good.stderr
    principal = TokenVerifier.from_settings(Settings(data_dir=data_dir)).verify(good.stdout.strip())
    assert principal.organisation == UNIT
    assert principal.subject == "cthomas"
    assert principal.roles == {COMMERCIAL, "procurement.buyer"}


# --- 4. audit verify ---------------------------------------------------------------------


def audit_verify(settings: Settings) -> tuple[int, str]:
    done = run_cli("audit", "verify", env=settings_env(settings))
    return done.returncode, flat(done.stdout + done.stderr)


def test_audit_verify_cli_detects_tampering(suite: Suite, settings: Settings) -> None:
    officer = suite.caller(UNIT, COMMERCIAL)
    for n in (1, 2, 3):
        officer.procurement.CreateSupplier(
            pb.CreateSupplierRequest(
                parent=f"organisations/{UNIT}", supplier=supplier_pb2.Supplier(display_name=f"Acme {n} Ltd")
            )
        )

    code, out = audit_verify(settings)
    assert code == 0, out
    assert f"procurement {UNIT}: 3 records, intact" in out
    assert "all audit chains intact" in out

    if settings.database_url:
        # The services' own role cannot rewrite history at all.
        set_role = sql.SQL("SET ROLE {}").format(sql.Identifier(settings.app_role_for("procurement")))
        with psycopg.connect(postgres_dsn(settings), connect_timeout=5) as conn:
            for statement in ("DELETE FROM audit_records", 'UPDATE audit_records SET "after" = NULL'):
                conn.execute(set_role)
                conn.execute("SET search_path TO procurement")
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
                conn.rollback()

    where = "organisation_code = ? AND chain_seq = ?"
    with owner(settings) as db:
        columns, rows = db.execute(
            "SELECT * FROM audit_records WHERE organisation_code = ? ORDER BY chain_seq", (UNIT,)
        )
        assert [r[columns.index("chain_seq")] for r in rows] == [1, 2, 3]
        originals = {r[columns.index("chain_seq")]: r for r in rows}
        quoted = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)

        def first_broken() -> int:
            """What VerifyAuditLog reports as `first_broken_record`."""
            engine = make_engine(settings.database_url_for("procurement"), schema="procurement")
            try:
                with Session(engine) as session:
                    reports = verify_chains(session, PROCUREMENT_KERNEL)
                    return next(r.first_broken for r in reports if r.organisation == UNIT)
            finally:
                engine.dispose()

        def restore(seq: int) -> None:
            db.execute(f"DELETE FROM audit_records WHERE {where}", (UNIT, seq))
            db.execute(f"INSERT INTO audit_records ({quoted}) VALUES ({marks})", originals[seq])
            assert audit_verify(settings)[0] == 0

        # (a) A record's content edited.
        db.execute(
            f"""UPDATE audit_records SET "after" = replace("after", 'Acme', 'Evil') """
            f"WHERE {where}",
            (UNIT, 2),
        )
        _, edited = db.execute(f'SELECT "after" FROM audit_records WHERE {where}', (UNIT, 2))
        assert "Evil 2 Ltd" in edited[0][0]
        code, out = audit_verify(settings)
        assert code == 1, out
        assert f"procurement {UNIT}: record 2" in out and "altered" in out
        assert first_broken() == 2
        assert "1 audit chain(s) broken" in out
        restore(2)

        # (b) A record from the middle removed.
        db.execute(f"DELETE FROM audit_records WHERE {where}", (UNIT, 2))
        code, out = audit_verify(settings)
        assert code == 1, out
        assert "record 2 is missing" in out
        assert first_broken() == 2
        restore(2)

        # (c) The newest record removed: only the chain's head can tell.
        db.execute(f"DELETE FROM audit_records WHERE {where}", (UNIT, 3))
        code, out = audit_verify(settings)
        assert code == 1, out
        assert "head says 3" in out and "removed from the end" in out
        assert first_broken() == 3  # the first record removed, not the last one left
        restore(3)

    # The service still appends to the restored chain, and the chain stays intact.
    officer.procurement.CreateSupplier(
        pb.CreateSupplierRequest(
            parent=f"organisations/{UNIT}", supplier=supplier_pb2.Supplier(display_name="Acme 4 Ltd")
        )
    )
    code, out = audit_verify(settings)
    assert code == 0, out
    assert f"procurement {UNIT}: 4 records, intact" in out


def test_serve_with_workers_shares_ports_and_stops_together(tmp_path: Path) -> None:
    directory_port, procurement_port, hr_port, finance_port = free_ports(4)
    ports = {
        "directory": directory_port,
        "procurement": procurement_port,
        "hr": hr_port,
        "finance": finance_port,
    }
    env = clean_env(BACKOFFICE_PORTS=json.dumps(ports), BACKOFFICE_METRICS_PORT="0")
    with serving(["serve", "--workers", "2"], env, tmp_path, tmp_path / "serve.log") as server:
        server.wait_for(
            lambda: server.output().count("procurement listening on") == 2, "two procurement workers"
        )
        address = f"127.0.0.1:{procurement_port}"
        assert health_status(address) == health_pb2.HealthCheckResponse.SERVING
        minted = run_cli("token", "--org", UNIT, "--role", COMMERCIAL, "--data-dir", str(tmp_path / "var"))
        auth = (("authorization", f"Bearer {minted.stdout.strip()}"),)
        for _ in range(6):  # new connections, spread by the kernel over both workers
            with grpc.insecure_channel(address) as channel:
                procurement_service_pb2_grpc.ProcurementServiceStub(channel).ListSuppliers(
                    pb.ListSuppliersRequest(parent=f"organisations/{UNIT}"), metadata=auth, timeout=10
                )
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait_exit(timeout=30) == 0, server.output()
    assert "Traceback" not in server.output()


def test_serve_says_which_port_it_cannot_take(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(BACKOFFICE_PORTS=json.dumps({"hr": port}), BACKOFFICE_DATA_DIR=str(tmp_path))
        refused = run_cli("serve", env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"hr cannot listen on 127.0.0.1:{port}" in refused.stderr, refused.stderr
    assert "BACKOFFICE_PORTS" in refused.stderr and "Traceback" not in refused.stderr + refused.stdout
