"""Organisations and the agreements between them: plain rules, no I/O."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace

from libs.common.errors import FailedPrecondition, Violations
from libs.common.functions import AGREEABLE_FUNCTIONS
from libs.common.names import valid_organisation_code
from libs.common.records import RecordInfo

MAX_NAME = 200


class OrganisationKind(enum.Enum):
    FORCE = "FORCE"
    PARTNER = "PARTNER"
    SHARED_SERVICE_UNIT = "SHARED_SERVICE_UNIT"
    NATIONAL_BODY = "NATIONAL_BODY"


@dataclass(frozen=True)
class Organisation:
    code: str
    display_name: str
    kind: OrganisationKind
    country: str
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.code}"


def check_new_organisation(
    code: str, display_name: str, kind: OrganisationKind | None, country: str
) -> Violations:
    v = Violations()
    v.check(
        valid_organisation_code(code),
        "organisation.name",
        "must be organisations/{code} with a GSS code (E23, W15, E06-E09, W06, E31, ...) "
        "or a project-local X code",
    )
    v.check(
        0 < len(display_name.strip()) <= MAX_NAME,
        "organisation.display_name",
        f"is required, at most {MAX_NAME} characters",
    )
    v.check(kind is not None, "organisation.kind", "is required")
    v.check(country in ("", "England", "Wales"), "organisation.country", "must be England or Wales")
    return v


class AgreementKind(enum.Enum):
    SERVICE_PROVISION = "SERVICE_PROVISION"
    DATA_SHARING = "DATA_SHARING"


class AgreementState(enum.Enum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    TERMINATED = "TERMINATED"


@dataclass(frozen=True)
class Agreement:
    id: str
    display_name: str
    kind: AgreementKind
    organisation: str
    counterparty: str
    functions: tuple[str, ...]
    start_date: dt.date
    end_date: dt.date | None
    terminate_time: dt.datetime | None
    termination_reason: str
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"agreements/{self.id}"

    def state(self, today: dt.date) -> AgreementState:
        if self.terminate_time is not None:
            return AgreementState.TERMINATED
        if today < self.start_date:
            return AgreementState.PENDING
        if self.end_date is not None and today > self.end_date:
            return AgreementState.EXPIRED
        return AgreementState.ACTIVE

    def grants_anything(self, today: dt.date) -> bool:
        return self.state(today) in (AgreementState.ACTIVE, AgreementState.PENDING)

    def shared_grants(self, other: Agreement, today: dt.date) -> tuple[str, ...]:
        """The functions `other`, still granting, would also grant the same party on a day
        of this agreement: each grant is then ended by terminating one agreement, not two."""
        same_parties = (self.organisation, self.counterparty, self.kind) == (
            other.organisation,
            other.counterparty,
            other.kind,
        )
        if not same_parties or not other.grants_anything(today):
            return ()
        if (self.end_date is not None and self.end_date < other.start_date) or (
            other.end_date is not None and other.end_date < self.start_date
        ):
            return ()
        return tuple(f for f in self.functions if f in other.functions)

    def terminated(self, reason: str, at: dt.datetime, today: dt.date, info: RecordInfo) -> Agreement:
        if self.terminate_time is not None:
            raise FailedPrecondition(
                f"{self.name} was already terminated",
                reason="AGREEMENT_ALREADY_TERMINATED",
                metadata={"agreement": self.name},
            )
        # Else its history would read as cut short when it ran its term.
        if self.state(today) is AgreementState.EXPIRED:
            assert self.end_date is not None
            raise FailedPrecondition(
                f"{self.name} expired on {self.end_date.isoformat()}: there is nothing left to terminate",
                reason="AGREEMENT_EXPIRED",
                metadata={"agreement": self.name, "end_date": self.end_date.isoformat()},
            )
        return replace(self, terminate_time=at, termination_reason=reason, info=info)


def check_new_agreement(
    *,
    display_name: str,
    kind: AgreementKind | None,
    organisation: str,
    counterparty: str,
    functions: list[str],
    start_date: dt.date | None,
    end_date: dt.date | None,
) -> Violations:
    v = Violations()
    v.check(
        0 < len(display_name.strip()) <= MAX_NAME,
        "agreement.display_name",
        f"is required, at most {MAX_NAME} characters",
    )
    v.check(kind is not None, "agreement.kind", "is required")
    v.check(valid_organisation_code(organisation), "agreement.organisation", "must be organisations/{code}")
    v.check(valid_organisation_code(counterparty), "agreement.counterparty", "must be organisations/{code}")
    if organisation and organisation == counterparty:
        v.add("agreement.counterparty", "must be another organisation than agreement.organisation")
    if not functions:
        v.add("agreement.functions", "name at least one function")
    for i, function in enumerate(functions):
        if function not in AGREEABLE_FUNCTIONS:
            v.add(
                f"agreement.functions[{i}]",
                f"{function!r} is not a business function; known: {', '.join(sorted(AGREEABLE_FUNCTIONS))}",
            )
    if len(set(functions)) != len(functions):
        v.add("agreement.functions", "names a function twice")
    v.check(start_date is not None, "agreement.start_date", "is required (a full date)")
    if start_date and end_date and end_date < start_date:
        v.add("agreement.end_date", "must not be before the start date")
    return v


def check_counterparty(kind: AgreementKind, counterparty: Organisation) -> None:
    if (
        kind is AgreementKind.SERVICE_PROVISION
        and counterparty.kind is not OrganisationKind.SHARED_SERVICE_UNIT
    ):
        raise FailedPrecondition(
            f"{counterparty.name} is a {counterparty.kind.value.lower().replace('_', ' ')}, "
            "and only a shared-service unit can provide functions to an organisation",
            reason="COUNTERPARTY_NOT_A_UNIT",
            metadata={"counterparty": counterparty.name},
        )
