"""The kernel's promises, through real servers: authentication, deny by default,
segregation of duties, idempotent retries, page tokens, onboarding."""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

import backoffice
from backoffice.common.v1 import organisation_pb2
from backoffice.directory.v1 import agreement_pb2
from backoffice.directory.v1 import directory_service_pb2 as dpb
from backoffice.procurement.v1 import procurement_service_pb2 as pb
from backoffice.procurement.v1 import procurement_service_pb2_grpc, supplier_pb2
from libs.common.access import Grant, RoleCatalogue
from libs.common.auth import TokenIssuer, TokenVerifier
from libs.common.functions import BUSINESS_FUNCTIONS
from libs.common.grpc_access import rule_of
from libs.common.server import ServiceApp, create_server
from services.procurement import app as procurement_app
from services.suite import runtime
from services.suite.registry import SERVICE_APPS
from tests.procurement.helpers import requisition
from tests.support import UNIT, WEST_YORKSHIRE, Suite, failure

CATALOGUES = {m.NAME: m.catalogue() for m in SERVICE_APPS}


def _our_services() -> Iterator[ServiceDescriptor]:
    for info in pkgutil.walk_packages(backoffice.__path__, "backoffice."):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(info.name)
            yield from module.DESCRIPTOR.services_by_name.values()


def test_every_method_of_every_service_declares_its_access() -> None:
    services = list(_our_services())
    assert {s.full_name for s in services} >= {
        "backoffice.directory.v1.DirectoryService",
        "backoffice.procurement.v1.ProcurementService",
    }
    missing, unknown_function, ungranted = [], [], []
    for service in services:
        package = service.full_name.split(".")[1]
        # The operations API is served by every service, so every catalogue must grant it.
        catalogues = list(CATALOGUES.values()) if package == "operations" else [CATALOGUES[package]]
        for method in service.methods:
            rule = rule_of(method)
            if rule is None:
                missing.append(method.full_name)
                continue
            if rule.function not in BUSINESS_FUNCTIONS:
                unknown_function.append(f"{method.full_name}: {rule.function}")
            if not all(
                any(c.grants([role], rule.permission) for role in [*c.roles, "-"]) for c in catalogues
            ):
                ungranted.append(f"{method.full_name}: {rule.permission}")
    assert missing == [], "methods without an access rule"
    assert unknown_function == []
    assert ungranted == [], "permissions no role grants"


def test_a_method_without_a_declared_rule_is_refused_at_run_time(suite: Suite) -> None:
    # Serve the real procurement servicer but declare none of its rules.
    real = procurement_app.build(suite.settings, b"secret", _NoGrants())
    app = ServiceApp(
        "undeclared", [], real.register, RoleCatalogue({"procurement.commercial": ["*"]}), real.close
    )
    verifier = TokenVerifier.from_settings(suite.settings)
    server = suite.run(create_server(app, verifier))
    try:
        channel = grpc.insecure_channel(server.address)
        stub = pb_grpc_stub(channel)
        token = suite.token(UNIT, "procurement.commercial")
        f = failure(
            stub.ListSuppliers,
            pb.ListSuppliersRequest(parent=f"organisations/{UNIT}"),
            metadata=[("authorization", f"Bearer {token}")],
        )
        assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "NO_ACCESS_RULE"
        channel.close()
    finally:
        suite.run(server.stop(0))


def test_each_call_is_judged_on_its_own_metadata_and_streams_are_refused(suite: Suite) -> None:
    """The server's interceptor builds a method's wrapped handler once; every call is still
    judged on its own token, and a streaming method of ours (none has an access rule) is
    refused with a reason rather than served."""
    listing = pb.ListSuppliersRequest(parent=f"organisations/{UNIT}")
    commercial = (("authorization", f"Bearer {suite.token(UNIT, 'procurement.commercial')}"),)
    operator = (("authorization", f"Bearer {suite.token(UNIT, 'platform.operator')}"),)
    with grpc.insecure_channel(suite.addresses["procurement"]) as channel:
        stub = pb_grpc_stub(channel)
        stub.ListSuppliers(listing, metadata=commercial)
        assert failure(stub.ListSuppliers, listing, metadata=operator).reason == "MISSING_PERMISSION"
        assert failure(stub.ListSuppliers, listing).reason == "TOKEN_MISSING"
        stub.ListSuppliers(listing, metadata=commercial)

    def watch(request: bytes, context: object) -> Iterator[bytes]:
        yield request

    streamer = grpc.method_handlers_generic_handler(
        "backoffice.procurement.v1.Streamer",
        {"Watch": grpc.unary_stream_rpc_method_handler(watch)},
    )
    app = ServiceApp(
        "streamer",
        [],
        lambda server: server.add_generic_rpc_handlers((streamer,)),
        RoleCatalogue({"procurement.commercial": ["*"]}),
    )
    server = suite.run(create_server(app, TokenVerifier.from_settings(suite.settings)))
    try:
        with grpc.insecure_channel(server.address) as channel:
            call: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
                "/backoffice.procurement.v1.Streamer/Watch"
            )
            f = failure(lambda: list(call(b"x", metadata=commercial)))
            assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "NO_ACCESS_RULE"
    finally:
        suite.run(server.stop(0))


class _NoGrants:
    async def grants_for(self, holder: str) -> list[Grant]:
        return []


def pb_grpc_stub(channel: grpc.Channel) -> procurement_service_pb2_grpc.ProcurementServiceStub:
    return procurement_service_pb2_grpc.ProcurementServiceStub(channel)


def test_authentication(suite: Suite) -> None:
    request = pb.ListSuppliersRequest(parent=f"organisations/{UNIT}")
    anonymous = suite.caller_with_token("")
    f = failure(anonymous.procurement.ListSuppliers, request)
    assert f.code is grpc.StatusCode.UNAUTHENTICATED and f.reason == "TOKEN_MISSING"
    expired = suite.token(UNIT, "procurement.buyer", now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=3))
    f = failure(suite.caller_with_token(expired).procurement.ListSuppliers, request)
    assert f.code is grpc.StatusCode.UNAUTHENTICATED and f.reason == "TOKEN_EXPIRED"
    forged = TokenIssuer(
        Ed25519PrivateKey.generate(), suite.settings.auth.issuer, suite.settings.auth.audience
    )
    f = failure(
        suite.caller_with_token(
            forged.mint("eve", UNIT, ["procurement.commercial"])
        ).procurement.ListSuppliers,
        request,
    )
    assert f.code is grpc.StatusCode.UNAUTHENTICATED and f.reason == "TOKEN_INVALID"
    f = failure(suite.caller_with_token("not-a-jwt").procurement.ListSuppliers, request)
    assert f.code is grpc.StatusCode.UNAUTHENTICATED
    # Health needs no token (Kubernetes probes have none).
    with grpc.insecure_channel(suite.addresses["procurement"]) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]  # the stubs omit it
            health_pb2.HealthCheckRequest()
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_roles_and_segregation_of_duties(suite: Suite) -> None:
    create = pb.CreateSupplierRequest(
        parent=f"organisations/{UNIT}", supplier=supplier_pb2.Supplier(display_name="x")
    )
    buyer = suite.caller(UNIT, "procurement.buyer")
    f = failure(buyer.procurement.CreateSupplier, create)
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "MISSING_PERMISSION"
    assert f.metadata["permission"] == "procurement.suppliers.create"
    operator = suite.caller(UNIT, "platform.operator")
    f = failure(operator.procurement.ListSuppliers, pb.ListSuppliersRequest(parent=f"organisations/{UNIT}"))
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "MISSING_PERMISSION"
    both = suite.caller(UNIT, "platform.operator", "procurement.commercial")
    f = failure(both.procurement.CreateSupplier, create)
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "SEGREGATION_OF_DUTIES"


def test_retry_with_request_id_returns_first_result_once(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    request = pb.CreateSupplierRequest(
        parent=f"organisations/{UNIT}",
        supplier=supplier_pb2.Supplier(display_name="Once Ltd"),
        request_id="5d0f7a52-1a0e-4c1b-9d7e-4c3b8f0d2e11",
    )
    first = officer.procurement.CreateSupplier(request)
    again = officer.procurement.CreateSupplier(request)
    assert again == first
    # Concurrent retries of another request: one supplier, one answer.
    concurrent = pb.CreateSupplierRequest()
    concurrent.CopyFrom(request)
    concurrent.request_id = "0b6f1c5e-8f0e-4a57-b2a4-9b1f0d6c7a21"
    concurrent.supplier.display_name = "Concurrent Ltd"
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: officer.procurement.CreateSupplier(concurrent), range(6)))
    assert len({a.name for a in answers}) == 1
    names = [
        s.display_name
        for s in officer.procurement.ListSuppliers(
            pb.ListSuppliersRequest(parent=f"organisations/{UNIT}")
        ).suppliers
    ]
    assert sorted(names) == ["Concurrent Ltd", "Once Ltd"]
    # The same id for another request is refused, and changes nothing.
    reused = pb.CreateSupplierRequest()
    reused.CopyFrom(request)
    reused.supplier.display_name = "Twice Ltd"
    f = failure(officer.procurement.CreateSupplier, reused)
    assert f.code is grpc.StatusCode.ALREADY_EXISTS and f.reason == "REQUEST_ID_REUSED"
    # Nor does another caller of the organisation get the first answer back by its id.
    colleague = suite.caller(UNIT, "procurement.commercial", subject="colleague")
    f = failure(colleague.procurement.CreateSupplier, request)
    assert f.code is grpc.StatusCode.ALREADY_EXISTS and f.reason == "REQUEST_ID_REUSED"
    assert "another caller" in f.message and "Once Ltd" not in f.message


def test_a_retried_change_gets_its_first_answer_after_the_state_moved_on(suite: Suite) -> None:
    """A retry of an answered request is answered from the record of its request_id even
    when doing the change again would now be refused (submitted already, stale etag) or
    would clash; the same request_id on another requisition is still REQUEST_ID_REUSED."""
    requester = suite.caller(WEST_YORKSHIRE, "procurement.requester")
    approver = suite.caller(WEST_YORKSHIRE, "procurement.senior_budget_holder", subject="approver")
    draft = requisition(requester, WEST_YORKSHIRE)
    submit = pb.SubmitRequisitionRequest(
        name=draft.name, etag=draft.etag, request_id="7c1d2b8e-3f4a-4e6b-9a0c-1d2e3f4a5b6c"
    )
    submitted = requester.procurement.SubmitRequisition(submit)
    assert requester.procurement.SubmitRequisition(submit) == submitted  # etag stale, state moved on
    approved_ = approver.procurement.ApproveRequisition(
        pb.ApproveRequisitionRequest(name=submitted.name, etag=submitted.etag)
    )
    assert requester.procurement.SubmitRequisition(submit) == submitted  # and further still
    # Without its request_id the same retry is refused for what it is.
    plain = failure(
        requester.procurement.SubmitRequisition, pb.SubmitRequisitionRequest(name=draft.name, etag=draft.etag)
    )
    assert plain.code is grpc.StatusCode.ABORTED and plain.reason == "ETAG_MISMATCH"
    other = requisition(requester, WEST_YORKSHIRE)
    reused = failure(
        requester.procurement.SubmitRequisition,
        pb.SubmitRequisitionRequest(name=other.name, etag=other.etag, request_id=submit.request_id),
    )
    assert reused.code is grpc.StatusCode.ALREADY_EXISTS and reused.reason == "REQUEST_ID_REUSED"
    got = requester.procurement.GetRequisition(pb.GetRequisitionRequest(name=other.name))
    assert got.etag == other.etag  # the refused request changed nothing
    assert approved_.state != submitted.state


def test_page_tokens(suite: Suite) -> None:
    officer = suite.caller(UNIT, "procurement.commercial")
    made = [
        officer.procurement.CreateSupplier(
            pb.CreateSupplierRequest(
                parent=f"organisations/{UNIT}",
                supplier=supplier_pb2.Supplier(display_name=f"Supplier {i}", sme=i % 2 == 0),
            )
        ).name
        for i in range(7)
    ]
    seen, token, pages = [], "", 0
    while True:
        page = officer.procurement.ListSuppliers(
            pb.ListSuppliersRequest(parent=f"organisations/{UNIT}", page_size=3, page_token=token)
        )
        seen += [s.name for s in page.suppliers]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == made and pages == 3
    first = officer.procurement.ListSuppliers(
        pb.ListSuppliersRequest(parent=f"organisations/{UNIT}", page_size=2, filter="sme = true")
    )
    assert all(s.sme for s in first.suppliers) and first.next_page_token
    f = failure(
        officer.procurement.ListSuppliers,
        pb.ListSuppliersRequest(
            parent=f"organisations/{UNIT}",
            page_size=2,
            filter="sme = false",
            page_token=first.next_page_token,
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and "page_token" in f.violations
    f = failure(
        officer.procurement.ListSuppliers,
        pb.ListSuppliersRequest(
            parent=f"organisations/{UNIT}", page_token=first.next_page_token[:-2] + "xx", filter="sme = true"
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and "page_token" in f.violations
    f = failure(
        officer.procurement.ListSuppliers,
        pb.ListSuppliersRequest(parent=f"organisations/{UNIT}", page_size=-1),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and "page_size" in f.violations
    f = failure(
        officer.procurement.ListSuppliers,
        pb.ListSuppliersRequest(parent=f"organisations/{UNIT}", filter="colour = red"),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and "colour" in f.violations["filter"]
    matched = officer.procurement.ListSuppliers(
        pb.ListSuppliersRequest(parent=f"organisations/{UNIT}", filter='display_name:"supplier 3"')
    )
    assert [s.display_name for s in matched.suppliers] == ["Supplier 3"]


def test_directory_reads_and_onboarding(suite: Suite) -> None:
    reader = suite.caller(WEST_YORKSHIRE, "procurement.buyer")
    forces, token = [], ""
    while True:
        page = reader.directory.ListOrganisations(
            dpb.ListOrganisationsRequest(
                filter="kind = ORGANISATION_KIND_FORCE", page_size=20, page_token=token
            )
        )
        forces += [o.code for o in page.organisations]
        token = page.next_page_token
        if not token:
            break
    assert len([c for c in forces if c[:3] in ("E23", "W15")]) == 43
    got = reader.directory.GetOrganisation(dpb.GetOrganisationRequest(name=f"organisations/{WEST_YORKSHIRE}"))
    assert got.kind == organisation_pb2.ORGANISATION_KIND_FORCE
    new = organisation_pb2.Organisation(
        name="organisations/E06000014",
        display_name="City of York Council",
        kind=organisation_pb2.ORGANISATION_KIND_PARTNER,
        country="England",
    )
    f = failure(
        suite.caller(WEST_YORKSHIRE, "directory.admin").directory.CreateOrganisation,
        dpb.CreateOrganisationRequest(organisation=new),
    )
    assert f.code is grpc.StatusCode.PERMISSION_DENIED and f.reason == "ONBOARDING_NOT_ALLOWED"
    unit_admin = suite.caller(UNIT, "directory.admin")
    created = unit_admin.directory.CreateOrganisation(dpb.CreateOrganisationRequest(organisation=new))
    assert created.code == "E06000014" and created.audit.update_acting_organisation == UNIT
    f = failure(unit_admin.directory.CreateOrganisation, dpb.CreateOrganisationRequest(organisation=new))
    assert f.code is grpc.StatusCode.ALREADY_EXISTS
    f = failure(
        unit_admin.directory.CreateOrganisation,
        dpb.CreateOrganisationRequest(
            organisation=organisation_pb2.Organisation(name="organisations/Z1", country="Scotland")
        ),
    )
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert {
        "organisation.name",
        "organisation.display_name",
        "organisation.kind",
        "organisation.country",
    } <= set(f.violations)


def test_agreement_bad_input(suite: Suite) -> None:
    admin = suite.caller(WEST_YORKSHIRE, "directory.admin")
    agreement = agreement_pb2.Agreement(
        display_name="",
        kind=agreement_pb2.AGREEMENT_KIND_SERVICE_PROVISION,
        organisation=f"organisations/{WEST_YORKSHIRE}",
        counterparty=f"organisations/{UNIT}",
        functions=["procurement.suppliers", "tea.making"],
        start_date={"year": 2026, "month": 5, "day": 1},
        end_date={"year": 2026, "month": 4, "day": 1},
    )
    f = failure(admin.directory.CreateAgreement, dpb.CreateAgreementRequest(agreement=agreement))
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT
    assert set(f.violations) == {"agreement.display_name", "agreement.functions[1]", "agreement.end_date"}
    agreement.ClearField("start_date")
    agreement.end_date.day = 31
    agreement.end_date.month = 2
    f = failure(admin.directory.CreateAgreement, dpb.CreateAgreementRequest(agreement=agreement))
    assert f.code is grpc.StatusCode.INVALID_ARGUMENT and "agreement.end_date" in f.violations
    assert not admin.directory.ListAgreements(
        dpb.ListAgreementsRequest(parent=f"organisations/{WEST_YORKSHIRE}")
    ).agreements


@pytest.mark.parametrize("service", runtime.SERVICES)
def test_every_service_is_started_by_the_suite(suite: Suite, service: str) -> None:
    with grpc.insecure_channel(suite.addresses[service]) as channel:
        assert (
            health_pb2_grpc.HealthStub(channel)
            .Check(  # type: ignore[attr-defined]  # the stubs omit it
                health_pb2.HealthCheckRequest()
            )
            .status
            == health_pb2.HealthCheckResponse.SERVING
        )
