"""Supplier invoices: capture with VAT, three-way match, approval and posting, payment."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from libs.common.errors import FailedPrecondition, InvalidArgument, Violations
from libs.common.money import MAX_AMOUNT
from libs.common.names import ChildName
from libs.common.records import RecordInfo
from services.finance.domain.chart import Account, AccountType
from services.finance.domain.journals import JournalLine
from services.finance.domain.matching import BilledLine, Discrepancy, OrderEvidence
from services.finance.domain.money import PENNY, ZERO, whole_pence

DEFAULT_TERMS_DAYS = 30
MAX_TEXT = 200
MAX_CANCELLATION_REASON = 500
MAX_QUANTITY_TEXT = 40  # the stored columns of a quantity and an order line


def invoice_number_key(number: str) -> str:
    """How a supplier's invoice numbers are compared for duplicates: without case, spaces
    or punctuation. `INV-77`, `inv 77` and `INV77` are one invoice: a copy sent again, or a
    number typed again another way, would otherwise be paid twice."""
    return "".join(c for c in number.casefold() if c.isalnum())


def purchase_order_key(reference: str) -> str:
    """How invoices citing one purchase order are found together (what was billed on it
    before, whose turn it is): the suite's order by its name, an order placed elsewhere by
    its reference without case, spaces or punctuation, as invoice numbers are."""
    if reference.startswith(SUITE_ORDER_PREFIX):
        return reference
    return invoice_number_key(reference)


SUITE_ORDER_PREFIX = "organisations/"


def suite_order_problem(organisation: str, reference: str) -> str | None:
    """What keeps `reference` from naming one of `organisation`'s orders in the suite's
    procurement service, or None."""
    problem = ChildName.problem(reference, "purchaseOrders", strict_id=True)
    if problem is None and reference.split("/")[1] != organisation:
        problem = "must be an order of the organisation whose invoice this is"
    return problem


class VatUse(enum.Enum):
    NON_BUSINESS = "NON_BUSINESS"
    BUSINESS = "BUSINESS"
    EXEMPT = "EXEMPT"

    @property
    def recoverable(self) -> bool:
        """Business input tax and, under VAT Act 1994 s33, non-business VAT of a police
        body or council are recovered; exempt-input VAT is a cost here."""
        return self is not VatUse.EXEMPT


class InvoiceState(enum.Enum):
    RECEIVED = "RECEIVED"
    APPROVED = "APPROVED"
    PAID = "PAID"
    # Captured in error, cancelled before approval: nothing was posted.
    CANCELLED = "CANCELLED"


class MatchState(enum.Enum):
    UNMATCHED = "UNMATCHED"
    MATCHED = "MATCHED"
    OUT_OF_TOLERANCE = "OUT_OF_TOLERANCE"


@dataclass(frozen=True)
class InvoiceLine:
    account: str
    cost_centre: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    net: Decimal
    vat: Decimal
    vat_use: VatUse | None
    order_line: str = ""

    @property
    def recoverable_vat(self) -> Decimal:
        return self.vat if self.vat_use is not None and self.vat_use.recoverable else ZERO

    @property
    def cost(self) -> Decimal:
        """What the line costs the body: net plus any VAT it cannot recover."""
        return self.net + self.vat - self.recoverable_vat


@dataclass(frozen=True)
class InvoiceDetails:
    supplier: str
    supplier_display_name: str
    supplier_invoice_number: str
    invoice_date: dt.date | None
    received_date: dt.date | None
    due_date: dt.date | None
    purchase_order: str
    commitment: str
    lines: tuple[InvoiceLine, ...]

    @property
    def net_total(self) -> Decimal:
        return sum((line.net for line in self.lines), ZERO)

    @property
    def vat_total(self) -> Decimal:
        return sum((line.vat for line in self.lines), ZERO)

    @property
    def gross_total(self) -> Decimal:
        return self.net_total + self.vat_total

    def checked(
        self,
        organisation: str,
        accounts: Mapping[str, Account],
        cost_centres: frozenset[str],
        today: dt.date,
        prefix: str = "invoice",
    ) -> InvoiceDetails:
        v = Violations()
        # Compared as written for duplicates: `.../s-acme ` must not be another supplier.
        if v.check(0 < len(self.supplier) <= 300, f"{prefix}.supplier", "is required"):
            supplier_problem = ChildName.problem(self.supplier, "suppliers", strict_id=True)
            v.check(supplier_problem is None, f"{prefix}.supplier", supplier_problem or "")
        name = self.supplier_display_name.strip()
        v.check(0 < len(name) <= MAX_TEXT, f"{prefix}.supplier_display_name", "is required")
        number = self.supplier_invoice_number.strip()
        if v.check(0 < len(number) <= 100, f"{prefix}.supplier_invoice_number", "is required"):
            v.check(
                bool(invoice_number_key(number)),
                f"{prefix}.supplier_invoice_number",
                "must hold a letter or a digit",
            )
        v.check(self.invoice_date is not None, f"{prefix}.invoice_date", "is required")
        v.check(self.received_date is not None, f"{prefix}.received_date", "is required")
        if self.invoice_date and self.received_date:
            v.check(
                self.received_date >= self.invoice_date,
                f"{prefix}.received_date",
                "cannot be before the invoice date",
            )
        if self.received_date:
            # Days to pay count from receipt (regulation 38): a date to come would flatter them.
            v.check(self.received_date <= today, f"{prefix}.received_date", "cannot be in the future")
        due = self.due_date
        if due is None and self.received_date is not None:
            due = self.received_date + dt.timedelta(days=DEFAULT_TERMS_DAYS)
        if due and self.received_date:
            v.check(due >= self.received_date, f"{prefix}.due_date", "cannot be before the day of receipt")
        order = self.purchase_order.strip()
        if v.check(len(order) <= 100, f"{prefix}.purchase_order", "is too long"):
            v.check(
                not order or bool(purchase_order_key(order)),
                f"{prefix}.purchase_order",
                "must hold a letter or a digit",
            )
            if order.lower().startswith(SUITE_ORDER_PREFIX):
                # An order of the suite: its receipts, not the clerk's word, are the evidence.
                order_problem = suite_order_problem(organisation, order)
                v.check(order_problem is None, f"{prefix}.purchase_order", order_problem or "")
        v.check(1 <= len(self.lines) <= 500, f"{prefix}.lines", "an invoice has from 1 to 500 lines")
        for i, line in enumerate(self.lines):
            at = f"{prefix}.lines[{i}]"
            account = accounts.get(line.account)
            v.check(
                account is not None and account.type is AccountType.EXPENDITURE,
                f"{at}.account",
                f"{line.account!r} is not an expenditure account of the chart",
            )
            v.check(line.cost_centre in cost_centres, f"{at}.cost_centre", "is not a cost centre")
            v.check(0 < len(line.description.strip()) <= MAX_TEXT, f"{at}.description", "is required")
            v.check(
                line.quantity > 0 and len(str(line.quantity)) <= MAX_QUANTITY_TEXT,
                f"{at}.quantity",
                f"must be more than zero, in at most {MAX_QUANTITY_TEXT} characters",
            )
            v.check(
                line.unit_price >= 0 and line.unit_price == line.unit_price.quantize(Decimal("1e-6")),
                f"{at}.unit_price",
                "must be at least zero, to at most six decimal places",
            )
            net_ok = v.check(
                line.net >= 0 and whole_pence(line.net), f"{at}.net", "must be at least zero, in whole pence"
            )
            if net_ok and line.quantity > 0:
                # Rounded to the penny, either way at a half: a penny more is a penny overpaid,
                # and the match compares quantities and prices, never nets.
                v.check(
                    abs(line.quantity * line.unit_price - line.net) <= PENNY / 2,
                    f"{at}.net",
                    f"must be quantity x unit price ({line.quantity * line.unit_price}) rounded to the penny",
                )
            v.check(
                line.vat >= 0 and whole_pence(line.vat), f"{at}.vat", "must be at least zero, in whole pence"
            )
            v.check(
                line.vat_use is not None, f"{at}.vat_use", "is required (business, non-business or exempt)"
            )
            v.check(len(line.order_line) <= MAX_QUANTITY_TEXT, f"{at}.order_line", "is too long")
            if self.purchase_order:
                v.check(
                    bool(line.order_line),
                    f"{at}.order_line",
                    "is required on an invoice with a purchase order",
                )
        v.check(
            sum((line.net + line.vat for line in self.lines), Decimal(0)) <= MAX_AMOUNT,
            f"{prefix}.lines",
            f"total more than the largest amount an invoice may carry ({MAX_AMOUNT:,})",
        )
        # An invoice of nothing would post no journal at approval, and could never be paid
        # or cancelled: it is not captured.
        v.check(
            not self.lines or sum((line.net + line.vat for line in self.lines), Decimal(0)) > 0,
            f"{prefix}.lines",
            "bill nothing: an invoice's total must be more than zero",
        )
        v.raise_if_any()
        return replace(
            self,
            supplier_display_name=name,
            supplier_invoice_number=number,
            purchase_order=order,
            due_date=due,
            lines=tuple(replace(line, description=line.description.strip()) for line in self.lines),
        )


@dataclass(frozen=True)
class Invoice:
    organisation: str
    ledger: str
    id: str
    details: InvoiceDetails
    state: InvoiceState
    match_state: MatchState
    discrepancies: tuple[Discrepancy, ...]
    info: RecordInfo
    journal: str = ""
    posting_date: dt.date | None = None
    payment_run: str = ""
    paid_date: dt.date | None = None
    # What the last match was made on: approval matches again against it, with what other
    # invoices have billed by then.
    match_evidence: OrderEvidence | None = None
    cancellation_reason: str = ""

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/ledgers/{self.ledger}/invoices/{self.id}"

    def cancelled(self, reason: str, info: RecordInfo) -> Invoice:
        """The invoice cancelled before approval; an approved one is posted, and only a
        credit note would undo it."""
        reason = reason.strip()
        if not 0 < len(reason) <= MAX_CANCELLATION_REASON:
            raise InvalidArgument.single(
                "reason", f"is required, at most {MAX_CANCELLATION_REASON} characters"
            )
        self.require_received()
        return replace(self, state=InvoiceState.CANCELLED, cancellation_reason=reason, info=info)

    def audit_view(self) -> dict[str, object]:
        d = self.details
        return {
            "name": self.name,
            "supplier": d.supplier,
            "supplier_invoice_number": d.supplier_invoice_number,
            "gross_total": str(d.gross_total),
            "state": self.state.value,
            "cancellation_reason": self.cancellation_reason,
            "match_state": self.match_state.value,
            "journal": self.journal,
            "payment_run": self.payment_run,
            "paid_date": self.paid_date.isoformat() if self.paid_date else None,
        }

    def billed_lines(self) -> list[BilledLine]:
        return [
            BilledLine(i, line.order_line, line.quantity, line.unit_price)
            for i, line in enumerate(self.details.lines)
        ]

    def require_received(self) -> None:
        if self.state is not InvoiceState.RECEIVED:
            raise FailedPrecondition(
                f"{self.name} is {self.state.value.lower()}, no longer awaiting approval",
                reason="INVOICE_NOT_RECEIVED",
            )

    def check_approvable(self) -> None:
        self.require_received()
        if self.details.purchase_order and self.match_state is MatchState.UNMATCHED:
            raise FailedPrecondition(
                f"{self.name} bills purchase order {self.details.purchase_order}: match it first",
                reason="MATCH_REQUIRED",
            )
        if self.match_state is MatchState.OUT_OF_TOLERANCE:
            raise FailedPrecondition(
                f"{self.name} does not match its order and receipts within the tolerance",
                reason="MATCH_OUT_OF_TOLERANCE",
                metadata={"discrepancies": str(len(self.discrepancies))},
            )


def posting_lines(details: InvoiceDetails, *, vat_account: str, creditors_account: str) -> list[JournalLine]:
    """The invoice's posting: each line's cost (net and irrecoverable VAT) debited to its
    account and cost centre, recoverable VAT to the VAT account, the gross credited to
    creditors."""
    lines = [
        JournalLine.dr(line.account, line.cost_centre, line.cost, line.description)
        for line in details.lines
        if line.cost > 0
    ]
    recoverable = sum((line.recoverable_vat for line in details.lines), ZERO)
    if recoverable > 0:
        lines.append(JournalLine.dr(vat_account, "", recoverable, "VAT recoverable"))
    if details.gross_total > 0:
        lines.append(
            JournalLine.cr(creditors_account, "", details.gross_total, details.supplier_display_name)
        )
    return lines


def payment_lines(
    invoices: Sequence[Invoice], *, bank_account: str, creditors_account: str
) -> list[JournalLine]:
    total = sum((i.details.gross_total for i in invoices), ZERO)
    return [
        JournalLine.dr(creditors_account, "", total, "payment run"),
        JournalLine.cr(bank_account, "", total, "payment run"),
    ]


@dataclass(frozen=True)
class PaymentRun:
    organisation: str
    ledger: str
    id: str
    payment_date: dt.date
    due_by: dt.date
    journal: str
    total: Decimal
    invoices: tuple[str, ...]
    info: RecordInfo

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/ledgers/{self.ledger}/paymentRuns/{self.id}"

    def audit_view(self) -> dict[str, object]:
        return {
            "name": self.name,
            "payment_date": self.payment_date.isoformat(),
            "due_by": self.due_by.isoformat(),
            "journal": self.journal,
            "total": str(self.total),
            "invoices": list(self.invoices),
        }
