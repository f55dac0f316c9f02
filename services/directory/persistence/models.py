"""The directory's tables."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, DateTime, ForeignKeyConstraint, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import PartyOwned, new_metadata
from libs.common.kernel_tables import add_kernel_tables
from libs.common.persistence import Recorded, VersionGuarded


class Base(DeclarativeBase):
    metadata = new_metadata()


KERNEL = add_kernel_tables(Base.metadata)


class OrganisationRow(Recorded, Base):
    """Public reference data: every signed-in caller may read it, so not tenant-owned."""

    __tablename__ = "organisations"

    code: Mapped[str] = mapped_column(String(9), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    country: Mapped[str] = mapped_column(String(20))


# Version-guarded: two terminations read at one version must not both be written.
class AgreementRow(PartyOwned, VersionGuarded, Base):
    __tablename__ = "agreements"
    __table_args__ = (
        Index("ix_agreements_organisation_code", "organisation_code"),
        Index("ix_agreements_counterparty_code", "counterparty_code"),
        ForeignKeyConstraint(["organisation_code"], ["organisations.code"]),
        ForeignKeyConstraint(["counterparty_code"], ["organisations.code"]),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    # Comma-separated function names: a small fixed vocabulary, always read whole.
    functions: Mapped[str] = mapped_column(Text)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    terminate_time: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    termination_reason: Mapped[str] = mapped_column(Text, default="")
