"""Each organisation's data stays its own; agreements open exactly what they say, while
they run; and both guards (the ORM filter and PostgreSQL row-level security) hold alone."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time

import grpc
import psycopg
import pytest
from google.protobuf import field_mask_pb2
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from backoffice.directory.v1 import agreement_pb2
from backoffice.directory.v1 import directory_service_pb2 as dpb
from backoffice.procurement.v1 import procurement_service_pb2 as pb
from backoffice.procurement.v1 import supplier_pb2
from libs.common.access import Scope
from libs.common.app import build_database
from libs.common.audit import AuditLog
from libs.common.config import Settings
from libs.common.context import PrincipalKind
from libs.common.db import Database, TenantScopeViolation, make_engine
from libs.common.errors import FailedPrecondition
from libs.common.persistence import insert_values, read_by_key, update_by_key, values_of
from libs.common.proto_mapping import date_to_proto
from libs.common.records import RecordInfo
from libs.common.service import Transaction
from services.directory import service as directory_service
from services.directory.domain.model import AgreementKind
from services.directory.persistence.models import KERNEL as DIRECTORY_KERNEL
from services.directory.service import DirectoryUnitOfWork
from services.procurement.domain.supplier import Supplier, SupplierDetails
from services.procurement.persistence.models import ContractRow, SupplierRow
from services.procurement.persistence.repository import SqlSupplierRepository
from tests.support import (
    CUMBRIA,
    LEEDS,
    SOUTH_YORKSHIRE,
    UNIT,
    WEST_YORKSHIRE,
    Caller,
    Suite,
    audit_after,
    failure,
    postgres_dsn,
    today,
    wait_until_a_transaction_waits_for_a_lock,
)


def _supplier(caller: Caller, org: str, name: str) -> supplier_pb2.Supplier:
    return caller.procurement.CreateSupplier(
        pb.CreateSupplierRequest(
            parent=f"organisations/{org}", supplier=supplier_pb2.Supplier(display_name=name)
        )
    )


def _agree(
    owner: Caller,
    organisation: str,
    counterparty: str,
    functions: list[str],
    *,
    kind: agreement_pb2.AgreementKind.ValueType = agreement_pb2.AGREEMENT_KIND_SERVICE_PROVISION,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> agreement_pb2.Agreement:
    agreement = agreement_pb2.Agreement(
        display_name="test agreement",
        kind=kind,
        organisation=f"organisations/{organisation}",
        counterparty=f"organisations/{counterparty}",
        functions=functions,
        start_date=date_to_proto(start or today() - dt.timedelta(days=30)),
    )
    if end:
        agreement.end_date.CopyFrom(date_to_proto(end))
    return owner.directory.CreateAgreement(dpb.CreateAgreementRequest(agreement=agreement))


def _share_west_suppliers_with_leeds(caller: Caller) -> agreement_pb2.Agreement:
    return _agree(
        caller,
        WEST_YORKSHIRE,
        LEEDS,
        ["procurement.suppliers"],
        kind=agreement_pb2.AGREEMENT_KIND_DATA_SHARING,
    )


def _names(caller: Caller, parent: str) -> list[str]:
    return [
        s.name for s in caller.procurement.ListSuppliers(pb.ListSuppliersRequest(parent=parent)).suppliers
    ]


def test_another_organisation_sees_nothing(suite: Suite) -> None:
    west = suite.caller(WEST_YORKSHIRE, "procurement.commercial")
    south = suite.caller(SOUTH_YORKSHIRE, "procurement.commercial")
    mine = _supplier(west, WEST_YORKSHIRE, "West's own")
    theirs = _supplier(south, SOUTH_YORKSHIRE, "South's own")
    # A named resource of another organisation reads as NOT_FOUND, never as forbidden.
    f = failure(south.procurement.GetSupplier, pb.GetSupplierRequest(name=mine.name))
    assert f.code is grpc.StatusCode.NOT_FOUND
    assert _names(south, f"organisations/{WEST_YORKSHIRE}") == []
    assert _names(south, "organisations/-") == [theirs.name]
    assert _names(west, "organisations/-") == [mine.name]
    # Nor can it change it, or create in another organisation's register.
    f = failure(
        south.procurement.UpdateSupplier,
        pb.UpdateSupplierRequest(
            supplier=supplier_pb2.Supplier(name=mine.name, display_name="hijacked"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
    )
    assert f.code is grpc.StatusCode.NOT_FOUND
    f = failure(_supplier, south, WEST_YORKSHIRE, "planted")
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "NO_AGREEMENT"
    assert west.procurement.GetSupplier(pb.GetSupplierRequest(name=mine.name)).display_name == "West's own"


def test_a_service_acting_for_no_organisation_reaches_no_organisations_data(suite: Suite) -> None:
    west = suite.caller(WEST_YORKSHIRE, "procurement.commercial")
    mine = _supplier(west, WEST_YORKSHIRE, "West's own")
    # Signed by the suite's key, but naming no organisation: such a token is for reading
    # the directory's grants, and whatever roles it carries open no register.
    rogue = suite.caller_with_token(
        suite.token("", "procurement.commercial", subject="anyone", kind=PrincipalKind.SERVICE)
    )
    f = failure(rogue.procurement.GetSupplier, pb.GetSupplierRequest(name=mine.name))
    assert f.code is grpc.StatusCode.NOT_FOUND
    assert _names(rogue, f"organisations/{WEST_YORKSHIRE}") == []
    f = failure(_supplier, rogue, WEST_YORKSHIRE, "planted")
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "NO_AGREEMENT"
    assert _names(west, f"organisations/{WEST_YORKSHIRE}") == [mine.name]


def test_the_directory_away_makes_a_call_for_another_organisation_unavailable(suite: Suite) -> None:
    unit = suite.caller(UNIT, "procurement.commercial")
    directory = next(s for s in suite.servers if s.app.name == "directory")
    suite.run(directory.stop(1))
    # No one can tell whether the unit may act for West Yorkshire: retry later, not INTERNAL.
    f = failure(
        unit.procurement.ListSuppliers, pb.ListSuppliersRequest(parent=f"organisations/{WEST_YORKSHIRE}")
    )
    assert f.code is grpc.StatusCode.UNAVAILABLE and f.reason == "DEPENDENCY_UNAVAILABLE"
    assert f.metadata["service"] == "directory"


def test_unit_acts_for_member_only_under_agreement_and_is_audited_as_acting(suite: Suite) -> None:
    force_admin = suite.caller(WEST_YORKSHIRE, "directory.admin")
    unit_officer = suite.caller(UNIT, "procurement.commercial", subject="unit-officer")
    f = failure(_supplier, unit_officer, WEST_YORKSHIRE, "too early")
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "NO_AGREEMENT"
    agreement = _agree(force_admin, WEST_YORKSHIRE, UNIT, ["procurement.suppliers"])
    assert agreement.state == agreement_pb2.AGREEMENT_STATE_ACTIVE
    created = _supplier(unit_officer, WEST_YORKSHIRE, "Bought for West")
    assert created.audit.create_principal == f"{UNIT}/unit-officer"
    assert created.audit.update_acting_organisation == UNIT
    assert _names(unit_officer, "organisations/-") == [created.name]
    # The agreement opens procurement.suppliers only: no other force, no other function.
    f = failure(_supplier, unit_officer, CUMBRIA, "x")
    assert f.code is grpc.StatusCode.PERMISSION_DENIED
    # The force ends the agreement: access ends with it.
    force_admin.directory.TerminateAgreement(
        dpb.TerminateAgreementRequest(
            name=agreement.name, reason="service moved in-house", etag=agreement.etag
        )
    )
    f = failure(unit_officer.procurement.GetSupplier, pb.GetSupplierRequest(name=created.name))
    assert f.code is grpc.StatusCode.NOT_FOUND
    assert _names(unit_officer, "organisations/-") == []
    force_buyer = suite.caller(WEST_YORKSHIRE, "procurement.buyer")
    assert _names(force_buyer, f"organisations/{WEST_YORKSHIRE}") == [created.name]


def test_agreement_dates_bound_access(suite: Suite) -> None:
    admin = suite.caller(WEST_YORKSHIRE, "directory.admin")
    officer = suite.caller(UNIT, "procurement.commercial")
    target = f"organisations/{WEST_YORKSHIRE}"
    expired = _agree(
        admin,
        WEST_YORKSHIRE,
        UNIT,
        ["procurement.suppliers"],
        start=today() - dt.timedelta(days=60),
        end=today() - dt.timedelta(days=1),
    )
    assert expired.state == agreement_pb2.AGREEMENT_STATE_EXPIRED
    pending = _agree(
        admin, WEST_YORKSHIRE, UNIT, ["procurement.suppliers"], start=today() + dt.timedelta(days=1)
    )
    assert pending.state == agreement_pb2.AGREEMENT_STATE_PENDING
    f = failure(
        officer.procurement.CreateSupplier,
        pb.CreateSupplierRequest(parent=target, supplier=supplier_pb2.Supplier(display_name="x")),
    )
    assert f.code is grpc.StatusCode.PERMISSION_DENIED
    # An agreement that ran its term is not terminated afterwards: its history would read
    # as cut short (review finding).
    f = failure(
        admin.directory.TerminateAgreement,
        dpb.TerminateAgreementRequest(name=expired.name, reason="tidying up"),
    )
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "AGREEMENT_EXPIRED"
    assert f.metadata["end_date"] == (today() - dt.timedelta(days=1)).isoformat()
    still = admin.directory.GetAgreement(dpb.GetAgreementRequest(name=expired.name))
    assert still.state == agreement_pb2.AGREEMENT_STATE_EXPIRED and not still.HasField("terminate_time")
    ends_today = _agree(admin, WEST_YORKSHIRE, UNIT, ["procurement.suppliers"], end=today())
    assert ends_today.state == agreement_pb2.AGREEMENT_STATE_ACTIVE
    _supplier(officer, WEST_YORKSHIRE, "within the last day")


def test_partner_reads_shared_data_but_cannot_change_it(suite: Suite) -> None:
    admin = suite.caller(WEST_YORKSHIRE, "directory.admin")
    west = suite.caller(WEST_YORKSHIRE, "procurement.commercial")
    council = suite.caller(LEEDS, "procurement.commercial")
    s = _supplier(west, WEST_YORKSHIRE, "Shared with Leeds")
    assert (
        failure(council.procurement.GetSupplier, pb.GetSupplierRequest(name=s.name)).code
        is grpc.StatusCode.NOT_FOUND
    )
    _share_west_suppliers_with_leeds(admin)
    assert council.procurement.GetSupplier(pb.GetSupplierRequest(name=s.name)).name == s.name
    assert s.name in _names(council, "organisations/-")
    f = failure(_supplier, council, WEST_YORKSHIRE, "x")
    assert f.code is grpc.StatusCode.PERMISSION_DENIED
    f = failure(
        council.procurement.UpdateSupplier,
        pb.UpdateSupplierRequest(
            supplier=supplier_pb2.Supplier(name=s.name, display_name="x"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
    )
    assert f.code is grpc.StatusCode.NOT_FOUND


def test_one_grant_one_agreement_so_that_terminating_it_ends_the_access(suite: Suite) -> None:
    admin = suite.caller(WEST_YORKSHIRE, "directory.admin")
    first = _agree(admin, WEST_YORKSHIRE, UNIT, ["procurement.suppliers", "finance.payables"])
    f = failure(_agree, admin, WEST_YORKSHIRE, UNIT, ["hr.records", "finance.payables"])
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "AGREEMENT_OVERLAPS"
    assert f.metadata == {"agreement": first.name, "functions": "finance.payables"}
    # Other functions, or another party and kind of agreement, are not the same grant.
    _agree(admin, WEST_YORKSHIRE, UNIT, ["hr.records"])
    _share_west_suppliers_with_leeds(admin)
    admin.directory.TerminateAgreement(
        dpb.TerminateAgreementRequest(name=first.name, reason="renewed on new terms")
    )
    renewed = _agree(admin, WEST_YORKSHIRE, UNIT, ["finance.payables"], start=today())
    assert renewed.state == agreement_pb2.AGREEMENT_STATE_ACTIVE


@pytest.mark.postgres
def test_two_identical_agreements_recorded_at_once_take_turns(postgres_suite: Suite) -> None:
    """Else both pass the overlap check at READ COMMITTED, and terminating one leaves the
    other's grants running. The second waits for the first's commit, then is refused."""
    db = build_database("directory", postgres_suite.settings)
    scope = Scope.of(WEST_YORKSHIRE)
    refused: list[BaseException | None] = []

    def agree(session: Session) -> None:
        uow = DirectoryUnitOfWork(
            Transaction(session, AuditLog(session, DIRECTORY_KERNEL, None), scope, None)
        )
        directory_service.create_agreement(
            uow,
            display_name="suppliers for Leeds",
            kind=AgreementKind.DATA_SHARING,
            organisation=WEST_YORKSHIRE,
            counterparty=LEEDS,
            functions=["procurement.suppliers"],
            start_date=today(),
            end_date=None,
            today=today(),
        )

    def second() -> None:
        try:
            with db.session(scope, write=True) as session:
                agree(session)
                session.commit()
            refused.append(None)
        except Exception as err:
            refused.append(err)

    try:
        with db.session(scope, write=True) as session:
            agree(session)
            waiting = threading.Thread(target=second)
            waiting.start()
            wait_until_a_transaction_waits_for_a_lock(postgres_suite.settings, "the second agreement")
            session.commit()
        waiting.join(timeout=30)
    finally:
        db.dispose()
    assert refused and isinstance(refused[0], FailedPrecondition)
    assert refused[0].reason == "AGREEMENT_OVERLAPS"


def test_service_provision_needs_a_shared_service_unit(suite: Suite) -> None:
    admin = suite.caller(WEST_YORKSHIRE, "directory.admin")
    f = failure(_agree, admin, WEST_YORKSHIRE, LEEDS, ["procurement.suppliers"])
    assert f.code is grpc.StatusCode.FAILED_PRECONDITION and f.reason == "COUNTERPARTY_NOT_A_UNIT"
    # Only the organisation itself records agreements that open its own data.
    other = suite.caller(SOUTH_YORKSHIRE, "directory.admin")
    f = failure(_agree, other, WEST_YORKSHIRE, UNIT, ["procurement.suppliers"])
    assert f.code is grpc.StatusCode.PERMISSION_DENIED


def test_an_agreement_names_every_bad_field_and_an_unknown_organisation_is_not_found(suite: Suite) -> None:
    admin = suite.caller(WEST_YORKSHIRE, "directory.admin")
    bad = agreement_pb2.Agreement(
        kind=agreement_pb2.AGREEMENT_KIND_SERVICE_PROVISION,
        organisation="forces/west-yorkshire",
        counterparty=f"organisations/{UNIT}\n",
        functions=["procurement.suppliers"],
        start_date=date_to_proto(today()),
    )
    bad.end_date.year, bad.end_date.month, bad.end_date.day = 2027, 2, 30
    f = failure(admin.directory.CreateAgreement, dpb.CreateAgreementRequest(agreement=bad))
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert f.violations.keys() == {
        "agreement.display_name",
        "agreement.organisation",
        "agreement.counterparty",
        "agreement.end_date",
    }
    assert "full calendar date" in f.violations["agreement.end_date"]
    # Organisations are public: one the directory does not know is NOT_FOUND, not a refusal.
    f = failure(_agree, admin, "X99999999", UNIT, ["procurement.suppliers"])
    assert f.code is grpc.StatusCode.NOT_FOUND and "organisations/X99999999" in f.message
    f = failure(_agree, admin, WEST_YORKSHIRE, "X99999999", ["procurement.suppliers"])
    assert f.code is grpc.StatusCode.NOT_FOUND and "organisations/X99999999" in f.message
    outsider = suite.caller(SOUTH_YORKSHIRE, "directory.admin")  # no rights in West Yorkshire
    f = failure(_agree, outsider, WEST_YORKSHIRE, "X99999999", ["procurement.suppliers"])
    assert f.code is grpc.StatusCode.NOT_FOUND and "organisations/X99999999" in f.message
    reader = suite.caller(UNIT, "service.grants_reader")
    f = failure(reader.directory.ListGrants, dpb.ListGrantsRequest(organisation="organisations/X99999999"))
    assert f.code is grpc.StatusCode.NOT_FOUND
    held = reader.directory.ListGrants(dpb.ListGrantsRequest(organisation=f"organisations/{UNIT}"))
    assert list(held.grants) == []  # known, and granted nothing yet
    # A caller whose organisation the directory does not know holds no grants anywhere.
    stranger = suite.caller("X99999999", "procurement.commercial")
    f = failure(_supplier, stranger, WEST_YORKSHIRE, "x")
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "NO_AGREEMENT"


def test_a_unit_keeping_a_forces_agreements_does_not_grant_itself_access(suite: Suite) -> None:
    force_admin = suite.caller(WEST_YORKSHIRE, "directory.admin")
    _agree(force_admin, WEST_YORKSHIRE, UNIT, ["directory.agreements"])
    unit_admin = suite.caller(UNIT, "directory.admin", subject="unit-admin")
    f = failure(_agree, unit_admin, WEST_YORKSHIRE, UNIT, ["procurement.suppliers", "hr.records"])
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "SELF_GRANT"
    assert f.metadata == {"organisation": WEST_YORKSHIRE, "counterparty": UNIT}
    unit_officer = suite.caller(UNIT, "procurement.commercial", subject="unit-officer")
    f = failure(_supplier, unit_officer, WEST_YORKSHIRE, "x")
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "NO_AGREEMENT"
    # What the force trusted it with, it still does: agreements with others, for the force.
    shared = _share_west_suppliers_with_leeds(unit_admin)
    assert shared.state == agreement_pb2.AGREEMENT_STATE_ACTIVE
    # The force lists them oldest first, a page at a time.
    names: list[str] = []
    token = ""
    while True:
        page = force_admin.directory.ListAgreements(
            dpb.ListAgreementsRequest(parent=f"organisations/{WEST_YORKSHIRE}", page_size=1, page_token=token)
        )
        names += [a.name for a in page.agreements]
        if not (token := page.next_page_token):
            break
    assert names[-1] == shared.name and len(names) == 2


def test_cached_statements_never_carry_one_callers_scope_to_another(suite: Suite) -> None:
    callers = {
        org: suite.caller(org, "procurement.commercial") for org in (WEST_YORKSHIRE, SOUTH_YORKSHIRE, CUMBRIA)
    }
    made = {org: _supplier(c, org, f"{org} supplier").name for org, c in callers.items()}
    for _ in range(3):
        for org, c in callers.items():
            assert _names(c, "organisations/-") == [made[org]]


def test_orm_guard_alone_filters_and_refuses_writes_outside_scope(settings: Settings, suite: Suite) -> None:
    west = suite.caller(WEST_YORKSHIRE, "procurement.commercial")
    south = suite.caller(SOUTH_YORKSHIRE, "procurement.commercial")
    _supplier(west, WEST_YORKSHIRE, "W")
    _supplier(south, SOUTH_YORKSHIRE, "S")
    engine = make_engine(
        settings.database_url_for("procurement"),
        schema="procurement",
        role=settings.app_role_for("procurement"),
        pool_size=1,
    )
    db = Database(engine, schema="procurement")
    try:
        from sqlalchemy import func, select
        from sqlalchemy.orm import aliased

        with db.session(Scope.of(WEST_YORKSHIRE), write=False) as session:
            rows = session.scalars(select(SupplierRow)).all()
            assert {r.organisation_code for r in rows} == {WEST_YORKSHIRE}
        with db.session(Scope.of(), write=False) as session:
            assert session.scalars(select(SupplierRow)).all() == []
        # Pages read as plain values pass through the same filter, and carry what the
        # instances do.
        with db.session(Scope.of(WEST_YORKSHIRE), write=False) as session:
            values = values_of(SupplierRow)
            plain = values.read(session, values.select())
            assert [(r.organisation_code, r.display_name) for r in plain] == [(WEST_YORKSHIRE, "W")]
            instance = session.scalars(select(SupplierRow)).one()
            assert plain[0].create_time == instance.create_time and plain[0].version == instance.version
        with db.session(Scope.of(), write=False) as session:
            assert values.read(session, values.select()) == []
        # A read by key with a Core statement (no filter to add) checks the scope by hand.
        southern_id = _supplier(south, SOUTH_YORKSHIRE, "S2").name.rsplit("/", 1)[1]
        with db.session(Scope.of(WEST_YORKSHIRE), write=False) as session:
            assert SqlSupplierRepository(session).get(SOUTH_YORKSHIRE, southern_id) is None
        with db.session(Scope.of(SOUTH_YORKSHIRE), write=False) as session:
            found = SqlSupplierRepository(session).get(SOUTH_YORKSHIRE, southern_id)
            assert found is not None and found.details.display_name == "S2"
            # Shared rows' visibility is wider than one organisation: never read without the filter.
            with pytest.raises(TypeError):
                read_by_key(session, ContractRow, {"organisation_code": SOUTH_YORKSHIRE, "id": "c-1"})
            with pytest.raises(TypeError):
                insert_values(session, ContractRow, {"organisation_code": SOUTH_YORKSHIRE, "id": "c-1"})
        # Core writes by key check the scope as the flush guard does.
        southern_key = {"organisation_code": SOUTH_YORKSHIRE, "id": southern_id}
        with db.session(Scope.of(WEST_YORKSHIRE), write=True) as session, pytest.raises(TenantScopeViolation):
            update_by_key(session, SupplierRow, southern_key, {"sme": True})
        # The filter applies wherever the table appears, not only as the selected entity.
        with db.session(Scope.of(WEST_YORKSHIRE), write=False) as session:
            other = aliased(SupplierRow)
            assert session.scalar(select(func.count()).select_from(SupplierRow)) == 1
            assert session.scalar(select(func.count()).select_from(other)) == 1
            assert (
                session.scalar(select(func.count(SupplierRow.id)).where(SupplierRow.display_name == "S")) == 0
            )
            southern = select(SupplierRow.id).where(SupplierRow.display_name == "S")
            assert session.scalars(select(other.id).where(southern.exists())).all() == []
            hidden = select(SupplierRow.id).where(SupplierRow.display_name == "S").scalar_subquery()
            assert session.scalar(select(func.count()).select_from(other).where(other.id == hidden)) == 0
            joined = select(other.display_name).join(SupplierRow, SupplierRow.id != other.id)
            assert session.scalars(joined).all() == []
        with db.session(Scope.of(WEST_YORKSHIRE), write=True) as session:
            session.add(
                SupplierRow(
                    organisation_code=SOUTH_YORKSHIRE,
                    id="s-planted",
                    display_name="x",
                    address_lines="",
                    postcode="",
                    sme=False,
                    vcse=False,
                    create_time=dt.datetime.now(dt.UTC),
                    update_time=dt.datetime.now(dt.UTC),
                    create_principal="x",
                    update_principal="x",
                    version=1,
                )
            )
            with pytest.raises(TenantScopeViolation):
                session.flush()
        # A repository's insert that skips the unit of work checks the scope itself.
        with db.session(Scope.of(WEST_YORKSHIRE), write=True) as session:
            planted = Supplier(
                SOUTH_YORKSHIRE,
                "s-planted-too",
                SupplierDetails(display_name="x"),
                RecordInfo.new("x", None, dt.datetime.now(dt.UTC)),
            )
            with pytest.raises(TenantScopeViolation):
                SqlSupplierRepository(session).add(planted)
            SqlSupplierRepository(session).add(dataclasses.replace(planted, organisation=WEST_YORKSHIRE))
            assert SqlSupplierRepository(session).get(WEST_YORKSHIRE, "s-planted-too") is not None
            session.commit()
        # Its update checks the version it read, as the unit of work's would.
        with db.session(Scope.of(WEST_YORKSHIRE), write=True) as session:
            suppliers = SqlSupplierRepository(session)
            read = suppliers.get(WEST_YORKSHIRE, "s-planted-too")
            assert read is not None
            session.execute(
                text("UPDATE suppliers SET version = version + 1 WHERE id = 's-planted-too'")
            )  # another writer, meanwhile
            later = dataclasses.replace(read, info=read.info.touched("y", None, dt.datetime.now(dt.UTC)))
            with pytest.raises(StaleDataError):
                suppliers.save(later)
    finally:
        db.dispose()


@pytest.mark.postgres
def test_row_level_security_alone_holds_for_hand_written_sql(
    postgres_settings: Settings, postgres_suite: Suite
) -> None:
    """PostgreSQL's guard on its own; on SQLite the ORM guard (tested above) is the only one."""
    settings, suite = postgres_settings, postgres_suite
    west = suite.caller(WEST_YORKSHIRE, "procurement.commercial")
    south = suite.caller(SOUTH_YORKSHIRE, "procurement.commercial")
    _supplier(west, WEST_YORKSHIRE, "W")
    _supplier(south, SOUTH_YORKSHIRE, "S")
    url = settings.database_url_for("procurement").replace("postgresql+psycopg://", "postgresql://")
    role = settings.app_role_for("procurement")
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        conn.execute("SET search_path TO procurement")
        # No scope set: nothing is visible (fails closed).
        assert conn.execute("SELECT count(*) FROM suppliers").fetchone() == (0,)
        conn.execute("SELECT set_config('app.orgs', %s, true)", (WEST_YORKSHIRE,))
        orgs = {r[0] for r in conn.execute("SELECT organisation_code FROM suppliers")}
        assert orgs == {WEST_YORKSHIRE}
        # Writing a row for another organisation is refused by the policy's WITH CHECK.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO suppliers (organisation_code, id, display_name, address_lines, postcode,"
                " sme, vcse, create_time, update_time, create_principal, update_principal, version)"
                " VALUES (%s, 's-x', 'x', '', '', false, false, now(), now(), 'x', 'x', 1)",
                (SOUTH_YORKSHIRE,),
            )
        conn.rollback()
        # The role owns nothing and bypasses nothing; it cannot switch the policy off.
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER TABLE procurement.suppliers DISABLE ROW LEVEL SECURITY")
    engine = make_engine(
        settings.database_url_for("procurement"), schema="procurement", role=role, pool_size=1
    )
    try:
        from libs.common.db import check_unprivileged

        check_unprivileged(engine)  # the services' own start-up check agrees
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM suppliers")).scalar() == 0
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_service_does_not_start_as_a_role_that_bypasses_row_level_security(
    postgres_settings: Settings,
) -> None:
    """The start-up check runs where every service builds its database (review finding: it
    was defined and tested, but no service called it)."""
    settings = postgres_settings
    url = settings.database_url_for("procurement").replace("postgresql+psycopg://", "postgresql://")
    role = sql.Identifier(settings.app_role_for("procurement"))
    build_database("procurement", settings).dispose()  # as migrated: unprivileged
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} BYPASSRLS").format(role))
    try:
        with pytest.raises(RuntimeError, match="bypasses row-level security"):
            build_database("procurement", settings)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} NOBYPASSRLS").format(role))


@pytest.mark.postgres
def test_two_terminations_read_at_one_version_do_not_both_succeed(postgres_suite: Suite) -> None:
    """Both wait on the row; the first to write wins and the other is ABORTED, rather than
    overwriting its reason and time (review finding: both answered OK)."""
    suite = postgres_suite
    alice = suite.caller(WEST_YORKSHIRE, "directory.admin", subject="alice")
    bob = suite.caller(WEST_YORKSHIRE, "directory.admin", subject="bob")
    agreement = _agree(alice, WEST_YORKSHIRE, UNIT, ["procurement.suppliers"])
    results: dict[str, object] = {}

    def terminate(who: str, caller: Caller) -> None:
        try:
            results[who] = caller.directory.TerminateAgreement(
                dpb.TerminateAgreementRequest(
                    name=agreement.name, reason=f"{who} ends it", etag=agreement.etag
                )
            )
        except grpc.RpcError as err:
            results[who] = err.code()

    threads = [threading.Thread(target=terminate, args=(w, c)) for w, c in (("alice", alice), ("bob", bob))]
    with psycopg.connect(postgres_dsn(suite.settings)) as holder:
        holder.execute(
            "SELECT 1 FROM directory.agreements WHERE id = %s FOR UPDATE", (agreement.name.split("/")[1],)
        )
        for t in threads:
            t.start()
        with psycopg.connect(postgres_dsn(suite.settings), autocommit=True) as watcher:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                ).fetchone()
                if row and row[0] >= 2:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the terminations did not both wait for the row")
        holder.commit()
    for t in threads:
        t.join(30)
    won = [r for r in results.values() if isinstance(r, agreement_pb2.Agreement)]
    lost = [r for r in results.values() if r is grpc.StatusCode.ABORTED]
    assert len(won) == 1 and len(lost) == 1, results
    stored = alice.directory.GetAgreement(dpb.GetAgreementRequest(name=agreement.name))
    assert stored.termination_reason == won[0].termination_reason
    assert len(audit_after(suite.settings, "directory", agreement.name)) == 2
