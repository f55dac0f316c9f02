"""People: who works for a force, in what capacity, and their self-declared characteristics."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import enum
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

from libs.common.errors import InvalidArgument, Violations
from libs.common.records import RecordInfo
from services.hr.domain.identifiers import (
    ni_number_problem,
    normalise_collar_number,
    normalise_ni_number,
    valid_collar_number,
)
from services.hr.domain.values import canonical, parse_decimal

MAX_NAME = 100
MAX_ADDRESS_LINES = 6
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
_PHONE = re.compile(r"^\+?[0-9 ]{7,20}\Z")
UPDATABLE = frozenset(
    {
        "given_name",
        "family_name",
        "preferred_name",
        "collar_number",
        "national_insurance_number",
        "birth_date",
        "sex",
        "ethnicity",
        "email",
        "phone",
        "address_lines",
        "postcode",
        "full_time_leave_days",
    }
)


class WorkerType(enum.Enum):
    POLICE_OFFICER = "police_officer"
    POLICE_STAFF = "police_staff"
    PCSO = "pcso"
    SPECIAL_CONSTABLE = "special_constable"
    DESIGNATED_OFFICER = "designated_officer"
    VOLUNTEER = "volunteer"

    @property
    def counted_in_fte(self) -> bool:
        """The Home Office counts these in FTE; specials and volunteers in heads."""
        return self not in (WorkerType.SPECIAL_CONSTABLE, WorkerType.VOLUNTEER)

    @property
    def warranted(self) -> bool:
        return self in (WorkerType.POLICE_OFFICER, WorkerType.SPECIAL_CONSTABLE)


class Sex(enum.Enum):
    FEMALE = "female"
    MALE = "male"
    NOT_STATED = "not_stated"

    @property
    def label(self) -> str:
        return {"female": "Female", "male": "Male", "not_stated": "Not stated"}[self.value]


_REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "ethnicity_ons_2021.csv"


class Ethnicity(enum.Enum):
    """ONS 2021 census categories; the value is the census's own wording."""

    BANGLADESHI = "Bangladeshi"
    CHINESE = "Chinese"
    INDIAN = "Indian"
    PAKISTANI = "Pakistani"
    OTHER_ASIAN = "Other Asian"
    AFRICAN = "African"
    CARIBBEAN = "Caribbean"
    OTHER_BLACK = "Other Black"
    WHITE_AND_ASIAN = "White and Asian"
    WHITE_AND_BLACK_AFRICAN = "White and Black African"
    WHITE_AND_BLACK_CARIBBEAN = "White and Black Caribbean"
    OTHER_MIXED = "Other Mixed or Multiple ethnic groups"
    WHITE_BRITISH = "English, Welsh, Scottish, Northern Irish or British"
    WHITE_IRISH = "Irish"
    GYPSY_OR_IRISH_TRAVELLER = "Gypsy or Irish Traveller"
    ROMA = "Roma"
    OTHER_WHITE = "Other White"
    ARAB = "Arab"
    ANY_OTHER = "Any other ethnic group"
    NOT_STATED = "Not stated"
    PREFER_NOT_TO_SAY = "Prefer not to say"

    @property
    def group(self) -> str:
        """The ONS 2021 high-level group; "Not stated" for both kinds of non-answer."""
        return ETHNIC_GROUPS.get(self.value, "Not stated")


def _load_groups() -> dict[str, str]:
    with _REFERENCE.open(newline="", encoding="utf-8") as f:
        return {row["category"]: row["group"] for row in csv.DictReader(f)}


ETHNIC_GROUPS = _load_groups()


class LeavingReason(enum.Enum):
    RESIGNATION = "resignation"
    RETIREMENT = "retirement"
    DISMISSAL = "dismissal"
    END_OF_CONTRACT = "end_of_contract"
    TRANSFER = "transfer"
    DEATH = "death"
    OTHER = "other"


@dataclass(frozen=True)
class ServiceHistoryEntry:
    """A period of earlier service in another force, carried by a transfer."""

    organisation: str
    post_display_name: str
    grade_display_name: str
    fte: Decimal
    start_date: dt.date
    end_date: dt.date


@dataclass(frozen=True)
class PersonDetails:
    """What HR states about a person; checked and normalised by `checked`."""

    given_name: str
    family_name: str
    sex: Sex | None
    ethnicity: Ethnicity | None
    preferred_name: str = ""
    collar_number: str = ""
    national_insurance_number: str = ""
    birth_date: dt.date | None = None
    email: str = ""
    phone: str = ""
    address_lines: tuple[str, ...] = ()
    postcode: str = ""
    # Canonical decimal text (for example "27.5"), empty for none.
    full_time_leave_days: str = ""

    @property
    def leave_days(self) -> Decimal | None:
        return Decimal(self.full_time_leave_days) if self.full_time_leave_days else None

    def checked(self, worker_type: WorkerType, prefix: str = "person") -> PersonDetails:
        v = Violations()
        given, family = self.given_name.strip(), self.family_name.strip()
        v.check(
            0 < len(given) <= MAX_NAME, f"{prefix}.given_name", f"is required, at most {MAX_NAME} characters"
        )
        v.check(
            0 < len(family) <= MAX_NAME,
            f"{prefix}.family_name",
            f"is required, at most {MAX_NAME} characters",
        )
        preferred = self.preferred_name.strip()
        v.check(len(preferred) <= MAX_NAME, f"{prefix}.preferred_name", f"at most {MAX_NAME} characters")
        collar = normalise_collar_number(self.collar_number)
        if problem := collar_number_problem(worker_type, collar):
            v.add(f"{prefix}.collar_number", problem)
        nino = normalise_ni_number(self.national_insurance_number)
        if nino and (problem := ni_number_problem(nino)):
            v.add(f"{prefix}.national_insurance_number", problem)
        v.check(self.sex is not None, f"{prefix}.sex", "is required: FEMALE, MALE or NOT_STATED")
        v.check(
            self.ethnicity is not None,
            f"{prefix}.ethnicity",
            "is required: an ONS 2021 category, NOT_STATED or PREFER_NOT_TO_SAY",
        )
        email = self.email.strip()
        if email:
            v.check(
                bool(_EMAIL.match(email)) and len(email) <= 200, f"{prefix}.email", "is not an email address"
            )
        phone = " ".join(self.phone.split())
        if phone:
            v.check(
                bool(_PHONE.match(phone)), f"{prefix}.phone", "must be 7 to 20 digits and spaces, + first"
            )
        lines = tuple(line.strip() for line in self.address_lines if line.strip())
        v.check(
            len(lines) <= MAX_ADDRESS_LINES, f"{prefix}.address_lines", f"at most {MAX_ADDRESS_LINES} lines"
        )
        postcode = " ".join(self.postcode.upper().split())
        v.check(len(postcode) <= 10, f"{prefix}.postcode", "is not a UK postcode")
        leave = parse_decimal(
            self.full_time_leave_days,
            f"{prefix}.full_time_leave_days",
            v,
            places=1,
            minimum=Decimal(0),
            maximum=Decimal(60),
            required=False,
            describe="days from 0 to 60 with at most one decimal place",
        )
        if self.birth_date is not None:
            v.check(
                dt.date(1900, 1, 1) < self.birth_date,
                f"{prefix}.birth_date",
                "must be after 1 January 1900",
            )
        v.raise_if_any()
        return replace(
            self,
            given_name=given,
            family_name=family,
            preferred_name=preferred,
            collar_number=collar,
            national_insurance_number=nino,
            email=email,
            phone=phone,
            address_lines=lines,
            postcode=postcode,
            full_time_leave_days=canonical(leave),
        )

    def with_changes(self, changes: PersonDetails, paths: frozenset[str]) -> PersonDetails:
        return replace(self, **{p: getattr(changes, p) for p in paths})


@dataclass(frozen=True)
class Person:
    organisation: str
    id: str
    worker_type: WorkerType
    details: PersonDetails
    join_date: dt.date
    info: RecordInfo
    leaving_date: dt.date | None = None
    leaving_reason: LeavingReason | None = None
    prior_service: tuple[ServiceHistoryEntry, ...] = ()

    @property
    def name(self) -> str:
        return person_name(self.organisation, self.id)

    @property
    def display_name(self) -> str:
        return f"{self.details.preferred_name or self.details.given_name} {self.details.family_name}"

    @property
    def service(self) -> tuple[dt.date, dt.date | None]:
        return self.join_date, self.leaving_date

    def in_service_on(self, day: dt.date) -> bool:
        return self.join_date <= day and (self.leaving_date is None or day <= self.leaving_date)

    def audit_view(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.info.version,
            "worker_type": self.worker_type.value,
            "join_date": self.join_date.isoformat(),
            "leaving_date": self.leaving_date.isoformat() if self.leaving_date else None,
            "leaving_reason": self.leaving_reason.value if self.leaving_reason else None,
            **{
                k: (v.value if isinstance(v, enum.Enum) else v.isoformat() if isinstance(v, dt.date) else v)
                # Fields read directly: asdict deep-copies, which counts in a bulk import.
                for k, v in ((f.name, getattr(self.details, f.name)) for f in _DETAIL_FIELDS)
            },
        }


_DETAIL_FIELDS = dataclasses.fields(PersonDetails)


def person_name(organisation: str, person_id: str) -> str:
    return f"organisations/{organisation}/people/{person_id}"


def collar_number_problem(worker_type: WorkerType, collar: str) -> str | None:
    """What is wrong with a (normalised) collar number for a person of `worker_type`."""
    if worker_type.warranted:
        if valid_collar_number(collar):
            return None
        return "is required for officers and special constables: 1 to 10 letters and digits"
    return "is only for police officers and special constables" if collar else None


def check_new_person(
    worker_type: WorkerType | None, details: PersonDetails, join_date: dt.date | None, prefix: str = "person"
) -> PersonDetails:
    """Every problem of a new person at once: its type and join date, and its details."""

    v = Violations()
    v.check(worker_type is not None, f"{prefix}.worker_type", "is required")
    v.check(join_date is not None, f"{prefix}.join_date", "is required: the first day of service")
    try:
        checked = details.checked(worker_type or WorkerType.VOLUNTEER, prefix)
    except InvalidArgument as err:
        v.items.extend(err.violations)
        if worker_type is None:  # the collar rule depends on the type: judge it once known
            v.items = [i for i in v.items if not i.field.endswith(".collar_number")]
        checked = details
    v.raise_if_any()
    return checked
