"""Procurement's tables."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.db import TenantOwned, new_metadata
from libs.common.kernel_tables import add_kernel_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


KERNEL = add_kernel_tables(Base.metadata)


class SupplierRow(TenantOwned, Base):
    __tablename__ = "suppliers"
    __table_args__ = (UniqueConstraint("organisation_code", "companies_house_number"),)

    organisation_code: Mapped[str] = mapped_column(String(9), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # NULL when empty, so that the unique constraint only binds real numbers.
    companies_house_number: Mapped[str | None] = mapped_column(String(8))
    vat_number: Mapped[str | None] = mapped_column(String(14))
    # Newline-joined: a short ordered list, always read whole.
    address_lines: Mapped[str] = mapped_column(Text, default="")
    postcode: Mapped[str] = mapped_column(String(10), default="")
    sme: Mapped[bool] = mapped_column(Boolean, default=False)
    vcse: Mapped[bool] = mapped_column(Boolean, default=False)
    create_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    update_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    create_principal: Mapped[str] = mapped_column(String(200))
    update_principal: Mapped[str] = mapped_column(String(200))
    update_acting_organisation: Mapped[str | None] = mapped_column(String(9))
    version: Mapped[int] = mapped_column(Integer)
