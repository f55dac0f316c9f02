"""Spend-over-£500 transparency files.

Police bodies publish each item of expenditure over £500 monthly (Elected Local Policing
Bodies (Specified Information) Order 2011); councils publish quarterly under the Local
Government Transparency Code 2015. An item is an approved supplier invoice; its amount is
what it costs the body (net plus VAT it cannot recover), and it is over £500 when that
amount exceeds £500.00.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from libs.common.errors import InvalidArgument

THRESHOLD = Decimal("500.00")


class SpendFileFormat(enum.Enum):
    POLICE_MONTHLY = "POLICE_MONTHLY"
    LGTC_QUARTERLY = "LGTC_QUARTERLY"


POLICE_HEADER = ["Body", "Date", "Transaction number", "Recipient", "Expense type", "Purpose", "Amount"]
LGTC_HEADER = [
    "Body name",
    "Date",
    "Department",
    "Beneficiary",
    "Summary of purpose",
    "Amount",
    "Irrecoverable VAT",
    "Merchant category",
    "Transaction number",
]


@dataclass(frozen=True)
class SpendItem:
    body: str
    date: dt.date
    transaction: str
    recipient: str
    department: str
    expense_type: str
    purpose: str
    amount: Decimal
    irrecoverable_vat: Decimal
    merchant_category: str


def file_range(
    fmt: SpendFileFormat, start: dt.date, field_path: str = "start_date"
) -> tuple[dt.date, dt.date]:
    if start.day != 1:
        raise InvalidArgument.single(field_path, "must be the first day of a month")
    months = 1
    if fmt is SpendFileFormat.LGTC_QUARTERLY:
        if start.month not in (1, 4, 7, 10):
            raise InvalidArgument.single(
                field_path, "a quarter starts on 1 April, 1 July, 1 October or 1 January"
            )
        months = 3
    month = start.month - 1 + months
    following = dt.date(start.year + month // 12, month % 12 + 1, 1)
    return start, following - dt.timedelta(days=1)


def over_threshold(items: Sequence[SpendItem]) -> list[SpendItem]:
    return sorted((i for i in items if i.amount > THRESHOLD), key=lambda i: (i.date, i.transaction))


def spend_csv(fmt: SpendFileFormat, items: Sequence[SpendItem]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if fmt is SpendFileFormat.POLICE_MONTHLY:
        writer.writerow(POLICE_HEADER)
        for i in items:
            writer.writerow(
                [
                    i.body,
                    i.date.strftime("%d/%m/%Y"),
                    i.transaction,
                    i.recipient,
                    i.expense_type,
                    i.purpose,
                    f"{i.amount:.2f}",
                ]
            )
    else:
        writer.writerow(LGTC_HEADER)
        for i in items:
            writer.writerow(
                [
                    i.body,
                    i.date.strftime("%d/%m/%Y"),
                    i.department,
                    i.recipient,
                    i.purpose,
                    f"{i.amount:.2f}",
                    f"{i.irrecoverable_vat:.2f}",
                    i.merchant_category,
                    i.transaction,
                ]
            )
    return out.getvalue()
