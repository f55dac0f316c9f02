"""Training, accreditation and vetting records, and what expires soon."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace

from libs.common.errors import Violations
from libs.common.records import RecordInfo

MAX_COURSE = 100


class VettingLevel(enum.Enum):
    RV = "rv"
    MV = "mv"
    NPPV1 = "nppv1"
    NPPV2 = "nppv2"
    NPPV3 = "nppv3"
    SC = "sc"
    DV = "dv"


@dataclass(frozen=True)
class VettingTerms:
    person_id: str
    level: VettingLevel | None
    granted_date: dt.date | None
    expiry_date: dt.date | None
    reference: str = ""

    def checked(self, prefix: str = "vetting_clearance") -> VettingTerms:
        v = Violations()
        v.check(bool(self.person_id), f"{prefix}.person", "is required: organisations/{code}/people/{person}")
        v.check(self.level is not None, f"{prefix}.level", "is required: RV, MV, NPPV1-3, SC or DV")
        v.check(self.granted_date is not None, f"{prefix}.granted_date", "is required")
        v.check(self.expiry_date is not None, f"{prefix}.expiry_date", "is required: every clearance expires")
        if self.granted_date and self.expiry_date:
            v.check(
                self.granted_date < self.expiry_date,
                f"{prefix}.expiry_date",
                "must be after the granted date",
            )
        reference = self.reference.strip()
        v.check(len(reference) <= 50, f"{prefix}.reference", "at most 50 characters")
        v.raise_if_any()
        return replace(self, reference=reference)


@dataclass(frozen=True)
class VettingClearance:
    organisation: str
    id: str
    terms: VettingTerms
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/vettingClearances/{self.id}"

    def audit_view(self) -> dict[str, object]:
        t = self.terms
        return {
            "name": self.name,
            "person_id": t.person_id,
            "level": t.level.value if t.level else None,
            "granted_date": t.granted_date.isoformat() if t.granted_date else None,
            "expiry_date": t.expiry_date.isoformat() if t.expiry_date else None,
            "reference": t.reference,
        }


@dataclass(frozen=True)
class TrainingTerms:
    person_id: str
    course: str
    completed_date: dt.date | None
    expiry_date: dt.date | None = None
    accreditation: bool = False

    def checked(self, prefix: str = "training_record") -> TrainingTerms:
        v = Violations()
        v.check(bool(self.person_id), f"{prefix}.person", "is required: organisations/{code}/people/{person}")
        course = self.course.strip()
        v.check(
            0 < len(course) <= MAX_COURSE, f"{prefix}.course", f"is required, at most {MAX_COURSE} characters"
        )
        v.check(self.completed_date is not None, f"{prefix}.completed_date", "is required")
        if self.completed_date and self.expiry_date:
            v.check(
                self.completed_date < self.expiry_date,
                f"{prefix}.expiry_date",
                "must be after the completed date",
            )
        v.raise_if_any()
        return replace(self, course=course)


@dataclass(frozen=True)
class TrainingRecord:
    organisation: str
    id: str
    terms: TrainingTerms
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/trainingRecords/{self.id}"

    def audit_view(self) -> dict[str, object]:
        t = self.terms
        return {
            "name": self.name,
            "person_id": t.person_id,
            "course": t.course,
            "accreditation": t.accreditation,
            "completed_date": t.completed_date.isoformat() if t.completed_date else None,
            "expiry_date": t.expiry_date.isoformat() if t.expiry_date else None,
        }


@dataclass(frozen=True)
class ExpiryWindow:
    """Expiry dates from `start` to `start + days` inclusive."""

    start: dt.date
    days: int

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days)

    def contains(self, expiry: dt.date | None) -> bool:
        return expiry is not None and self.start <= expiry <= self.end


def expiry_window(days: int, start: dt.date, field_path: str = "expires_within_days") -> ExpiryWindow | None:
    v = Violations()
    v.check(0 <= days <= 3660, field_path, "must be from 0 (no window) to 3660 days")
    v.raise_if_any()
    return ExpiryWindow(start, days) if days else None
