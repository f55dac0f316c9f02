"""gRPC servicer of the directory: protobuf in, use case, protobuf out."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

from backoffice.common.v1 import organisation_pb2
from backoffice.directory.v1 import agreement_pb2, directory_service_pb2_grpc
from backoffice.directory.v1 import directory_service_pb2 as pb
from libs.common.access import Grant, GrantKind, Scope
from libs.common.db import Database
from libs.common.errors import InvalidArgument, Violations
from libs.common.filtering import FieldType, parse_filter
from libs.common.grpc_types import RpcContext
from libs.common.names import OrganisationName
from libs.common.proto_mapping import (
    audit_metadata,
    date_or_violation,
    date_to_proto,
    timestamp,
)
from libs.common.service import ServiceKernel
from services.directory import service
from services.directory.domain.model import (
    Agreement,
    AgreementKind,
    Organisation,
    OrganisationKind,
    check_new_agreement,
)
from services.directory.persistence.repository import AgreementRepository

_ORG_KINDS = {
    organisation_pb2.ORGANISATION_KIND_FORCE: OrganisationKind.FORCE,
    organisation_pb2.ORGANISATION_KIND_PARTNER: OrganisationKind.PARTNER,
    organisation_pb2.ORGANISATION_KIND_SHARED_SERVICE_UNIT: OrganisationKind.SHARED_SERVICE_UNIT,
    organisation_pb2.ORGANISATION_KIND_NATIONAL_BODY: OrganisationKind.NATIONAL_BODY,
}
_ORG_KINDS_PB = {v: k for k, v in _ORG_KINDS.items()}
_AGREEMENT_KINDS = {
    agreement_pb2.AGREEMENT_KIND_SERVICE_PROVISION: AgreementKind.SERVICE_PROVISION,
    agreement_pb2.AGREEMENT_KIND_DATA_SHARING: AgreementKind.DATA_SHARING,
}
_AGREEMENT_KINDS_PB = {v: k for k, v in _AGREEMENT_KINDS.items()}
_ORG_FILTERS = {"kind": FieldType.ENUM, "country": FieldType.STRING}


def organisation_to_proto(org: Organisation) -> organisation_pb2.Organisation:
    return organisation_pb2.Organisation(
        name=org.name,
        code=org.code,
        display_name=org.display_name,
        kind=_ORG_KINDS_PB[org.kind],
        country=org.country,
        audit=audit_metadata(org.info),
        etag=org.info.etag,
    )


def agreement_to_proto(a: Agreement, today: dt.date) -> agreement_pb2.Agreement:
    msg = agreement_pb2.Agreement(
        name=a.name,
        display_name=a.display_name,
        kind=_AGREEMENT_KINDS_PB[a.kind],
        organisation=f"organisations/{a.organisation}",
        counterparty=f"organisations/{a.counterparty}",
        functions=list(a.functions),
        start_date=date_to_proto(a.start_date),
        state=agreement_pb2.AgreementState.Value(f"AGREEMENT_STATE_{a.state(today).value}"),
        termination_reason=a.termination_reason,
        audit=audit_metadata(a.info),
        etag=a.info.etag,
    )
    if a.end_date:
        msg.end_date.CopyFrom(date_to_proto(a.end_date))
    if a.terminate_time:
        msg.terminate_time.CopyFrom(timestamp(a.terminate_time))
    return msg


def _agreement_id(name: str) -> str:
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "agreements" or not parts[1]:
        raise InvalidArgument.single("name", "must look like agreements/{agreement}")
    return parts[1]


def _party(name: str) -> str:
    """The code in `organisations/{code}`; else the name as given, which the agreement's
    checks report with any other malformed field."""
    return name.removeprefix("organisations/") if name.startswith("organisations/") else name


def _org_kind_filter(value: object) -> str:
    text = str(value)
    for kind in OrganisationKind:
        if text in (kind.value, f"ORGANISATION_KIND_{kind.value}"):
            return kind.value
    raise InvalidArgument.single("filter", f"kind takes an organisation kind, not {text!r}")


class LocalGrantSource:
    """The directory answers its own access questions from its own tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def grants_for(self, holder: str) -> Sequence[Grant]:
        def work() -> list[Grant]:
            with self._db.session(Scope.of(holder), write=False) as session:
                return grants_of(AgreementRepository(session).held_by(holder, dt.date.min))

        return await asyncio.to_thread(work)


def grants_of(agreements: Sequence[Agreement]) -> list[Grant]:
    kinds = {
        AgreementKind.SERVICE_PROVISION: GrantKind.SERVICE_PROVISION,
        AgreementKind.DATA_SHARING: GrantKind.DATA_SHARING,
    }
    return [
        Grant(a.organisation, f, kinds[a.kind], a.start_date, a.end_date, a.name)
        for a in agreements
        for f in a.functions
    ]


class DirectoryServicer(directory_service_pb2_grpc.DirectoryServiceServicer):
    def __init__(self, kernel: ServiceKernel) -> None:
        self.k = kernel

    async def GetOrganisation(
        self, request: pb.GetOrganisationRequest, context: RpcContext
    ) -> organisation_pb2.Organisation:
        name = OrganisationName.parse(request.name, "name")
        org = await self.k.read(
            Scope.of(), lambda tx: service.get_organisation(service.DirectoryUnitOfWork(tx), name.code)
        )
        return organisation_to_proto(org)

    async def ListOrganisations(
        self, request: pb.ListOrganisationsRequest, context: RpcContext
    ) -> pb.ListOrganisationsResponse:
        comparisons = parse_filter(request.filter, _ORG_FILTERS)
        comparisons = [
            type(c)(c.field, c.op, _org_kind_filter(c.value)) if c.field == "kind" else c for c in comparisons
        ]
        fingerprint = self.k.pager.fingerprint("organisations", request.filter)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        orgs = await self.k.read(
            Scope.of(),
            lambda tx: service.list_organisations(
                service.DirectoryUnitOfWork(tx), comparisons, page.after, page.size + 1
            ),
        )
        response = pb.ListOrganisationsResponse(
            organisations=[organisation_to_proto(o) for o in orgs[: page.size]]
        )
        response.next_page_token = self.k.pager.next_token(page, orgs, lambda x: (x.code,))
        return response

    async def CreateOrganisation(
        self, request: pb.CreateOrganisationRequest, context: RpcContext
    ) -> organisation_pb2.Organisation:
        o = request.organisation
        code = o.name.removeprefix("organisations/") if o.name.startswith("organisations/") else ""
        principal = self.k.caller()
        # Onboarding creates the organisation: its own chain holds the record.
        scope = Scope.of(code or "-")
        return await self.k.write(
            scope,
            request,
            organisation_pb2.Organisation,
            lambda tx: organisation_to_proto(
                service.create_organisation(
                    service.DirectoryUnitOfWork(tx),
                    actor_organisation=principal.organisation,
                    code=code,
                    display_name=o.display_name,
                    kind=_ORG_KINDS.get(o.kind),
                    country=o.country,
                )
            ),
        )

    async def CreateAgreement(
        self, request: pb.CreateAgreementRequest, context: RpcContext
    ) -> agreement_pb2.Agreement:
        a = request.agreement
        kind = _AGREEMENT_KINDS.get(a.kind)
        owner, counterparty = _party(a.organisation), _party(a.counterparty)
        functions = list(a.functions)
        dates = Violations()
        start = date_or_violation(a.start_date, "agreement.start_date", dates)
        end = date_or_violation(a.end_date, "agreement.end_date", dates)
        # Every malformed field in one answer, before anything is looked up; then an unknown
        # organisation, either party, is NOT_FOUND (organisations are public), not a refusal.
        problems = check_new_agreement(
            display_name=a.display_name,
            kind=kind,
            organisation=owner,
            counterparty=counterparty,
            functions=functions,
            start_date=start,
            end_date=end,
        )
        # A date that is not one is reported as such, not also as missing.
        unreadable = {v.field for v in dates.items}
        problems.items = [v for v in problems.items if v.field not in unreadable] + dates.items
        problems.raise_if_any()

        await self.k.read(
            Scope.of(),
            lambda tx: service.require_organisations(service.DirectoryUnitOfWork(tx), owner, counterparty),
        )
        scope = await self.k.require_in(owner)
        today = self.k.today()
        return await self.k.write(
            scope,
            request,
            agreement_pb2.Agreement,
            lambda tx: agreement_to_proto(
                service.create_agreement(
                    service.DirectoryUnitOfWork(tx),
                    display_name=a.display_name,
                    kind=kind,
                    organisation=owner,
                    counterparty=counterparty,
                    functions=functions,
                    start_date=start,
                    end_date=end,
                    today=today,
                ),
                today,
            ),
        )

    async def GetAgreement(
        self, request: pb.GetAgreementRequest, context: RpcContext
    ) -> agreement_pb2.Agreement:
        agreement_id = _agreement_id(request.name)
        scope = await self.k.scope_everywhere()
        found = await self.k.read(
            scope, lambda tx: service.get_agreement(service.DirectoryUnitOfWork(tx), agreement_id)
        )
        return agreement_to_proto(found, self.k.today())

    async def ListAgreements(
        self, request: pb.ListAgreementsRequest, context: RpcContext
    ) -> pb.ListAgreementsResponse:
        parent = OrganisationName.parse(request.parent)
        fingerprint = self.k.pager.fingerprint("agreements", parent)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_in(parent.code)
        found = await self.k.read(
            scope,
            lambda tx: service.DirectoryUnitOfWork(tx).agreements.page_for(
                parent.code, page.after, page.size + 1
            ),
        )
        today = self.k.today()
        response = pb.ListAgreementsResponse(
            agreements=[agreement_to_proto(a, today) for a in found[: page.size]]
        )
        response.next_page_token = self.k.pager.next_token(page, found, lambda x: (x.id,))
        return response

    async def TerminateAgreement(
        self, request: pb.TerminateAgreementRequest, context: RpcContext
    ) -> agreement_pb2.Agreement:
        agreement_id = _agreement_id(request.name)
        if not request.reason.strip():
            raise InvalidArgument.single("reason", "say why the agreement ends")
        visible = await self.k.scope_everywhere()
        current = await self.k.read(
            visible, lambda tx: service.get_agreement(service.DirectoryUnitOfWork(tx), agreement_id)
        )
        party = current.organisation if current.organisation in visible else current.counterparty
        scope = await self.k.scope_of(request.name, party)
        today = self.k.today()
        return await self.k.write(
            scope,
            request,
            agreement_pb2.Agreement,
            lambda tx: agreement_to_proto(
                service.terminate_agreement(
                    service.DirectoryUnitOfWork(tx),
                    agreement_id,
                    reason=request.reason,
                    etag=request.etag,
                    acting_party=party,
                    today=today,
                ),
                today,
            ),
        )

    async def ListGrants(self, request: pb.ListGrantsRequest, context: RpcContext) -> pb.ListGrantsResponse:
        holder = OrganisationName.parse(request.organisation, "organisation")
        scope = await self.k.scope_in(holder.code)
        today = self.k.today()
        agreements = await self.k.read(
            scope, lambda tx: service.agreements_held(service.DirectoryUnitOfWork(tx), holder.code, today)
        )
        grants = []
        for g in grants_of(agreements):
            msg = agreement_pb2.Grant(
                organisation=f"organisations/{g.organisation}",
                kind=_AGREEMENT_KINDS_PB[AgreementKind[g.kind.name]],
                function=g.function,
                start_date=date_to_proto(g.start_date),
                agreement=g.agreement,
            )
            if g.end_date:
                msg.end_date.CopyFrom(date_to_proto(g.end_date))
            grants.append(msg)
        return pb.ListGrantsResponse(grants=grants)
