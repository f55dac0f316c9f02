"""The directory's use cases. They take a unit of work and plain values, and return
domain objects; the servicer maps protobuf to and from them."""

from __future__ import annotations

import datetime as dt

from libs.common.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from libs.common.filtering import Comparison
from libs.common.names import new_id
from libs.common.paging import JsonKey
from libs.common.records import RecordInfo, check_etag, snapshot
from libs.common.service import Transaction
from services.directory.domain.model import (
    Agreement,
    AgreementKind,
    Organisation,
    OrganisationKind,
    check_counterparty,
    check_new_agreement,
    check_new_organisation,
)
from services.directory.persistence.repository import AgreementRepository, OrganisationRepository


class DirectoryUnitOfWork:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self.organisations = OrganisationRepository(tx.session)
        self.agreements = AgreementRepository(tx.session)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def get_organisation(uow: DirectoryUnitOfWork, code: str) -> Organisation:
    org = uow.organisations.get(code)
    if org is None:
        raise NotFound(f"organisations/{code}")
    return org


def list_organisations(
    uow: DirectoryUnitOfWork, comparisons: list[Comparison], after: JsonKey | None, size: int
) -> list[Organisation]:
    return uow.organisations.page(comparisons, after, size)


def create_organisation(
    uow: DirectoryUnitOfWork,
    *,
    actor_organisation: str,
    code: str,
    display_name: str,
    kind: OrganisationKind | None,
    country: str,
) -> Organisation:
    check_new_organisation(code, display_name, kind, country).raise_if_any()
    assert kind is not None
    actor = uow.organisations.get(actor_organisation)
    if actor is None or actor.kind is not OrganisationKind.SHARED_SERVICE_UNIT:
        raise PermissionDenied(
            "only a shared-service unit's directory administrators onboard organisations",
            reason="ONBOARDING_NOT_ALLOWED",
        )
    if uow.organisations.get(code) is not None:
        raise AlreadyExists(
            f"organisations/{code} is already onboarded",
            reason="ORGANISATION_EXISTS",
            metadata={"organisation": f"organisations/{code}"},
        )
    info = RecordInfo.new(uow.tx.principal_id, actor_organisation, _now())
    org = Organisation(code, display_name.strip(), kind, country, info)
    uow.organisations.add(org)
    uow.tx.audit.record(code, org.name, None, snapshot(org))
    return org


def require_organisations(uow: DirectoryUnitOfWork, *codes: str) -> None:
    """NOT_FOUND for the first organisation the directory does not know."""
    for code in codes:
        get_organisation(uow, code)


def agreements_held(uow: DirectoryUnitOfWork, holder: str, today: dt.date) -> list[Agreement]:
    """The agreements that grant `holder` something today or later; NOT_FOUND for an
    organisation the directory does not know (rather than an empty answer)."""
    get_organisation(uow, holder)
    return uow.agreements.held_by(holder, today)


def create_agreement(
    uow: DirectoryUnitOfWork,
    *,
    display_name: str,
    kind: AgreementKind | None,
    organisation: str,
    counterparty: str,
    functions: list[str],
    start_date: dt.date | None,
    end_date: dt.date | None,
    today: dt.date,
) -> Agreement:
    check_new_agreement(
        display_name=display_name,
        kind=kind,
        organisation=organisation,
        counterparty=counterparty,
        functions=functions,
        start_date=start_date,
        end_date=end_date,
    ).raise_if_any()
    assert kind is not None
    assert start_date is not None
    acting = uow.tx.acting_organisation
    if acting is not None and acting == counterparty:
        # Else a unit trusted only to keep the organisation's agreements could give itself
        # any other function of it, and keep it after its own agreement ended.
        raise PermissionDenied(
            f"{acting} acts for {organisation} under an agreement and may not record one that gives "
            f"itself access: {organisation}'s own staff must",
            reason="SELF_GRANT",
            metadata={"organisation": organisation, "counterparty": counterparty},
        )
    if uow.organisations.get(organisation) is None:
        raise NotFound(f"organisations/{organisation}")
    other = uow.organisations.get(counterparty)
    if other is None:
        raise NotFound(f"organisations/{counterparty}")
    check_counterparty(kind, other)
    info = RecordInfo.new(uow.tx.principal_id, uow.tx.acting_organisation, _now())
    agreement = Agreement(
        id=new_id("a"),
        display_name=display_name.strip(),
        kind=kind,
        organisation=organisation,
        counterparty=counterparty,
        functions=tuple(functions),
        start_date=start_date,
        end_date=end_date,
        terminate_time=None,
        termination_reason="",
        info=info,
    )
    for held in uow.agreements.between(organisation, counterparty, lock=True):
        if shared := agreement.shared_grants(held, today):
            raise FailedPrecondition(
                f"{held.name} already grants {counterparty} {', '.join(shared)} in {organisation} on some "
                "of these days: amend the dates or functions, or terminate it first",
                reason="AGREEMENT_OVERLAPS",
                metadata={"agreement": held.name, "functions": ",".join(shared)},
            )
    uow.agreements.add(agreement)
    uow.tx.audit.record(organisation, agreement.name, None, snapshot(agreement))
    return agreement


def get_agreement(uow: DirectoryUnitOfWork, agreement_id: str) -> Agreement:
    agreement = uow.agreements.get(agreement_id)
    if agreement is None:
        raise NotFound(f"agreements/{agreement_id}")
    return agreement


def terminate_agreement(
    uow: DirectoryUnitOfWork,
    agreement_id: str,
    *,
    reason: str,
    etag: str,
    acting_party: str,
    today: dt.date,
) -> Agreement:
    current = get_agreement(uow, agreement_id)
    check_etag(current.name, etag, current.info)
    now = _now()
    ended = current.terminated(
        reason.strip(), now, today, current.info.touched(uow.tx.principal_id, uow.tx.acting_organisation, now)
    )
    uow.agreements.save(ended)
    uow.tx.audit.record(acting_party, ended.name, snapshot(current), snapshot(ended))
    return ended
