"""Transfers and secondments of people between forces."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from collections.abc import Container
from dataclasses import dataclass, replace

from libs.common.errors import FailedPrecondition, Violations
from libs.common.records import RecordInfo
from services.hr.domain.person import WorkerType


class TransferKind(enum.Enum):
    TRANSFER = "transfer"
    SECONDMENT = "secondment"


class TransferState(enum.Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class TransferTerms:
    kind: TransferKind | None
    person_id: str
    receiving_organisation: str
    effective_date: dt.date | None
    end_date: dt.date | None = None

    def checked(
        self,
        sending: str,
        *,
        forces: Container[str],
        national_bodies: Container[str],
        prefix: str = "transfer",
    ) -> TransferTerms:
        """`forces` and `national_bodies`: who may receive (an officer or member of staff
        moves to another force, and is seconded to a force or a national body such as the
        NCA; never to a council or a shared-service unit, which would then hold the record)."""
        v = Violations()
        v.check(self.kind is not None, f"{prefix}.kind", "is required: TRANSFER or SECONDMENT")
        v.check(bool(self.person_id), f"{prefix}.person", "is required: organisations/{code}/people/{person}")
        v.check(
            bool(self.receiving_organisation),
            f"{prefix}.receiving_organisation",
            "is required: organisations/{code}",
        )
        v.check(
            self.receiving_organisation != sending,
            f"{prefix}.receiving_organisation",
            "must be another organisation than the sending one",
        )
        receiving = self.receiving_organisation
        if receiving and receiving != sending and self.kind is TransferKind.TRANSFER:
            v.check(receiving in forces, f"{prefix}.receiving_organisation", "must be a police force")
        elif receiving and receiving != sending and self.kind is TransferKind.SECONDMENT:
            v.check(
                receiving in forces or receiving in national_bodies,
                f"{prefix}.receiving_organisation",
                "must be a police force or a national body",
            )
        v.check(self.effective_date is not None, f"{prefix}.effective_date", "is required")
        if self.kind is TransferKind.SECONDMENT:
            if self.end_date is None:
                v.add(f"{prefix}.end_date", "is required for a secondment")
            elif self.effective_date and self.end_date <= self.effective_date:
                v.add(f"{prefix}.end_date", "must be after the effective date")
        elif self.kind is TransferKind.TRANSFER and self.end_date is not None:
            v.add(f"{prefix}.end_date", "is only for a secondment")
        v.raise_if_any()
        return self


@dataclass(frozen=True)
class SharedView:
    """What crosses to the receiving force before acceptance."""

    display_name: str
    worker_type: WorkerType
    grade_display_name: str


@dataclass(frozen=True)
class Transfer:
    organisation: str  # the sending force
    id: str
    terms: TransferTerms
    shared: SharedView
    state: TransferState
    receiving_person_id: str
    decline_reason: str
    info: RecordInfo
    # The person's record as it crosses on acceptance (a transfer only): plain JSON data.
    package: dict[str, object]
    cancel_reason: str = ""

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/transfers/{self.id}"

    @property
    def receiving(self) -> str:
        return self.terms.receiving_organisation

    def decided(
        self, state: TransferState, acting_in: str, info: RecordInfo, *, person_id: str = "", reason: str = ""
    ) -> Transfer:
        if acting_in != self.receiving:
            raise FailedPrecondition(
                f"only the receiving force {self.receiving} accepts or declines {self.name}",
                reason="NOT_RECEIVING_FORCE",
            )
        self._require_pending()
        return replace(self, state=state, info=info, receiving_person_id=person_id, decline_reason=reason)

    def with_record(self, shared: SharedView, package: dict[str, object], info: RecordInfo) -> Transfer:
        """The offer carrying the person's record as it stands now, while it is pending."""
        self._require_pending()
        return replace(self, shared=shared, package=package, info=info)

    def cancelled(self, acting_in: str, info: RecordInfo, reason: str) -> Transfer:
        """The offer withdrawn by the force that made it, while the other has not decided."""
        if acting_in != self.organisation:
            raise FailedPrecondition(
                f"only the sending force {self.organisation} withdraws {self.name}",
                reason="NOT_SENDING_FORCE",
            )
        self._require_pending()
        return replace(self, state=TransferState.CANCELLED, info=info, cancel_reason=reason)

    def _require_pending(self) -> None:
        if self.state is not TransferState.PENDING:
            raise FailedPrecondition(
                f"{self.name} is {self.state.value}, not pending",
                reason="TRANSFER_NOT_PENDING",
                metadata={"state": self.state.value},
            )

    def audit_view(self) -> dict[str, object]:
        t = self.terms
        return {
            "name": self.name,
            "kind": t.kind.value if t.kind else None,
            "person_id": t.person_id,
            "receiving_organisation": t.receiving_organisation,
            "effective_date": t.effective_date.isoformat() if t.effective_date else None,
            "end_date": t.end_date.isoformat() if t.end_date else None,
            "state": self.state.value,
            "receiving_person_id": self.receiving_person_id,
            "decline_reason": self.decline_reason,
            "cancel_reason": self.cancel_reason,
            "display_name": self.shared.display_name,
            "grade_display_name": self.shared.grade_display_name,
            # The record that would cross, by digest: personal data stays out of the trail.
            "record_sha256": hashlib.sha256(json.dumps(self.package, sort_keys=True).encode()).hexdigest()
            if self.package
            else "",
        }
