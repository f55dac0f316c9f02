"""Repositories of the directory: domain objects in, domain objects out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from libs.common.filtering import Comparison
from libs.common.paging import JsonKey
from libs.common.persistence import (
    apply_filter,
    keyset_after,
    record_info,
    record_values,
    take_turns,
    values_of,
)
from services.directory.domain.model import Agreement, AgreementKind, Organisation, OrganisationKind
from services.directory.persistence.models import AgreementRow, OrganisationRow


def _organisation(row: OrganisationRow) -> Organisation:
    return Organisation(row.code, row.display_name, OrganisationKind(row.kind), row.country, record_info(row))


def _agreement(row: AgreementRow) -> Agreement:
    return Agreement(
        id=row.id,
        display_name=row.display_name,
        kind=AgreementKind(row.kind),
        organisation=row.organisation_code,
        counterparty=row.counterparty_code,
        functions=tuple(row.functions.split(",")),
        start_date=row.start_date,
        end_date=row.end_date,
        terminate_time=row.terminate_time,
        termination_reason=row.termination_reason,
        info=record_info(row),
    )


class OrganisationRepository:
    FILTERS: ClassVar[Mapping[str, InstrumentedAttribute[Any]]] = {
        "kind": OrganisationRow.kind,
        "country": OrganisationRow.country,
    }

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, code: str) -> Organisation | None:
        row = self._session.get(OrganisationRow, code)
        return _organisation(row) if row else None

    def add(self, org: Organisation) -> None:
        self._session.add(
            OrganisationRow(
                code=org.code,
                display_name=org.display_name,
                kind=org.kind.value,
                country=org.country,
                **record_values(org.info),
            )
        )
        self._session.flush()

    def page(self, comparisons: Sequence[Comparison], after: JsonKey | None, size: int) -> list[Organisation]:
        stmt = apply_filter(values_of(OrganisationRow).select(), comparisons, self.FILTERS)
        stmt = keyset_after(stmt, [OrganisationRow.code], after).limit(size)
        return [_organisation(r) for r in values_of(OrganisationRow).read(self._session, stmt)]


class AgreementRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, agreement_id: str) -> Agreement | None:
        row = self._session.scalars(select(AgreementRow).where(AgreementRow.id == agreement_id)).first()
        return _agreement(row) if row else None

    def add(self, a: Agreement) -> None:
        self._session.add(
            AgreementRow(
                id=a.id,
                display_name=a.display_name,
                kind=a.kind.value,
                organisation_code=a.organisation,
                counterparty_code=a.counterparty,
                functions=",".join(a.functions),
                start_date=a.start_date,
                end_date=a.end_date,
                terminate_time=a.terminate_time,
                termination_reason=a.termination_reason,
                **record_values(a.info),
            )
        )
        self._session.flush()

    def save(self, a: Agreement) -> None:
        row = self._session.scalars(select(AgreementRow).where(AgreementRow.id == a.id)).one()
        row.terminate_time = a.terminate_time
        row.termination_reason = a.termination_reason
        for key, value in record_values(a.info).items():
            setattr(row, key, value)
        self._session.flush()

    def page_for(self, organisation: str, after: JsonKey | None, size: int) -> list[Agreement]:
        stmt = select(AgreementRow).where(
            or_(
                AgreementRow.organisation_code == organisation, AgreementRow.counterparty_code == organisation
            )
        )
        stmt = keyset_after(stmt, [AgreementRow.id], after).limit(size)
        return [_agreement(r) for r in self._session.scalars(stmt)]

    def between(self, organisation: str, counterparty: str, *, lock: bool = False) -> list[Agreement]:
        """With `lock`, another writer of this pair's agreements waits until this
        transaction ends: two identical agreements recorded at once would both pass an
        overlap check, and terminating one would leave the other's grants."""
        if lock:
            take_turns(self._session, f"directory-agreements-{organisation}-{counterparty}")
        stmt = select(AgreementRow).where(
            AgreementRow.organisation_code == organisation, AgreementRow.counterparty_code == counterparty
        )
        return [_agreement(r) for r in self._session.scalars(stmt)]

    def held_by(self, counterparty: str, today: dt.date) -> list[Agreement]:
        """Agreements that grant `counterparty` something today or later."""
        stmt = select(AgreementRow).where(
            AgreementRow.counterparty_code == counterparty,
            AgreementRow.terminate_time.is_(None),
            or_(AgreementRow.end_date.is_(None), AgreementRow.end_date >= today),
        )
        return [_agreement(r) for r in self._session.scalars(stmt)]
