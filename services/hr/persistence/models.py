"""HR's tables. Decimals are stored as integers of a fixed unit (FTE in ten-thousandths,
days in tenths, hours in hundredths, money in pence), so no value ever passes through a
float on SQLite."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import PartyOwned, TenantOwned, new_metadata
from libs.common.kernel_tables import add_kernel_tables
from libs.common.persistence import Recorded


class Base(DeclarativeBase):
    metadata = new_metadata()


KERNEL = add_kernel_tables(Base.metadata)


class PersonRow(TenantOwned, Recorded, Base):
    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("organisation_code", "collar_number"),
        UniqueConstraint("organisation_code", "national_insurance_number"),
    )

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    worker_type: Mapped[str] = mapped_column(String(30))
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    preferred_name: Mapped[str] = mapped_column(String(100))
    # NULL when empty, so that the unique constraints only bind real numbers.
    collar_number: Mapped[str | None] = mapped_column(String(10))
    national_insurance_number: Mapped[str | None] = mapped_column(String(9))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(20))
    ethnicity: Mapped[str] = mapped_column(String(60))
    email: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(20))
    address_lines: Mapped[str] = mapped_column(Text)
    postcode: Mapped[str] = mapped_column(String(10))
    full_time_leave_tenths: Mapped[int | None] = mapped_column(Integer)
    join_date: Mapped[dt.date] = mapped_column(Date)
    leaving_date: Mapped[dt.date | None] = mapped_column(Date)
    leaving_reason: Mapped[str | None] = mapped_column(String(30))
    # JSON list of earlier service carried by a transfer; read whole.
    prior_service: Mapped[str] = mapped_column(Text)


class GradeRow(TenantOwned, Recorded, Base):
    __tablename__ = "grades"
    __table_args__ = (UniqueConstraint("organisation_code", "display_name"),)

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    rank: Mapped[str | None] = mapped_column(String(30))
    # JSON list of {"code", "annual_salary_pence"} in scale order; read whole.
    pay_points: Mapped[str] = mapped_column(Text)


class OrgUnitRow(TenantOwned, Recorded, Base):
    __tablename__ = "org_units"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[str | None] = mapped_column(String(63))


class PostRow(TenantOwned, Recorded, Base):
    __tablename__ = "posts"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    org_unit_id: Mapped[str] = mapped_column(String(63))
    worker_type: Mapped[str] = mapped_column(String(30))
    grade_id: Mapped[str] = mapped_column(String(63))
    budgeted_fte_units: Mapped[int] = mapped_column(BigInteger)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)


class AssignmentRow(TenantOwned, Recorded, Base):
    __tablename__ = "assignments"
    __table_args__ = (
        # A person's assignments, and on PostgreSQL all that workforce statistics read of
        # them, so that totalling every person's assignments is an index-only scan.
        Index(
            "ix_assignments_by_person",
            "organisation_code",
            "person_id",
            postgresql_include=["start_date", "end_date", "fte_units", "grade_id"],
        ),
    )

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(63), index=True)
    post_id: Mapped[str] = mapped_column(String(63), index=True)
    fte_units: Mapped[int] = mapped_column(Integer)
    grade_id: Mapped[str] = mapped_column(String(63))
    pay_point: Mapped[str] = mapped_column(String(20))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)


class LeaveRequestRow(TenantOwned, Recorded, Base):
    __tablename__ = "leave_requests"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(63), index=True)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    days_tenths: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20))
    decided_by: Mapped[str] = mapped_column(String(200))


class SicknessAbsenceRow(TenantOwned, Recorded, Base):
    __tablename__ = "sickness_absences"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(63), index=True)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(100))
    work_related: Mapped[bool] = mapped_column(Boolean)


class TrainingRecordRow(TenantOwned, Recorded, Base):
    __tablename__ = "training_records"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(63), index=True)
    course: Mapped[str] = mapped_column(String(100))
    accreditation: Mapped[bool] = mapped_column(Boolean)
    completed_date: Mapped[dt.date] = mapped_column(Date)
    expiry_date: Mapped[dt.date | None] = mapped_column(Date, index=True)


class VettingClearanceRow(TenantOwned, Recorded, Base):
    __tablename__ = "vetting_clearances"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(63), index=True)
    level: Mapped[str] = mapped_column(String(10))
    granted_date: Mapped[dt.date] = mapped_column(Date)
    expiry_date: Mapped[dt.date] = mapped_column(Date, index=True)
    reference: Mapped[str] = mapped_column(String(50))


class PayRecordRow(TenantOwned, Recorded, Base):
    __tablename__ = "pay_records"
    __table_args__ = (UniqueConstraint("organisation_code", "person_id", "snapshot_date"),)

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(63))
    snapshot_date: Mapped[dt.date] = mapped_column(Date, index=True)
    ordinary_pay_pence: Mapped[int] = mapped_column(BigInteger)
    period_bonus_pence: Mapped[int] = mapped_column(BigInteger)
    pay_period_days: Mapped[int] = mapped_column(Integer)
    weekly_hours_hundredths: Mapped[int] = mapped_column(Integer)
    annual_bonus_pence: Mapped[int] = mapped_column(BigInteger)
    full_pay: Mapped[bool] = mapped_column(Boolean)


class TransferRow(PartyOwned, Recorded, Base):
    """Seen by both forces: `organisation_code` sends, `counterparty_code` receives."""

    __tablename__ = "transfers"

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    counterparty_code: Mapped[str] = mapped_column(String(9), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    person_id: Mapped[str] = mapped_column(String(63), index=True)
    effective_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    display_name: Mapped[str] = mapped_column(String(210))
    worker_type: Mapped[str] = mapped_column(String(30))
    grade_display_name: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20))
    receiving_person_id: Mapped[str] = mapped_column(String(63))
    decline_reason: Mapped[str] = mapped_column(String(500))
    cancel_reason: Mapped[str] = mapped_column(String(500), server_default="")
    # The person's record as it will cross on acceptance (JSON); never returned by the API.
    package: Mapped[str] = mapped_column(Text)
