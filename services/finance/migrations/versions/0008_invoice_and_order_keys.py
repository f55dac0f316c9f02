"""A supplier's invoice numbers are compared by their key (case, spaces and punctuation
aside), not as typed: `INV-77`,
`inv 77` and `INV77` from one supplier are one invoice, captured once per organisation.
The supplier's name loses any spaces around it (the service now refuses such a name), so
that `.../suppliers/s-acme ` is not another supplier. Invoices citing one purchase order
are found together by its key (`purchase_order_key`: a suite order by its name, another
by its reference without case, spaces or punctuation), so that an order cited as
`PO-1001 ` does not forget what was billed on `PO-1001`.

The keys of the invoices already captured are computed here, in Python, by the rule the
service applies (`invoice_number_key`), written out so that this revision keeps meaning
what it meant if that rule changes later. An existing database holding two such numbers
of one supplier, neither cancelled, fails this upgrade naming them, before it changes
anything: one is a duplicate to cancel (or, if both are genuine, a matter for the
supplier) before the upgrade is run again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BY_NUMBER = "uq_invoices_supplier_invoice_number"
_BY_KEY = "uq_invoices_supplier_invoice_key"
_BY_ORDER = "ix_invoices_purchase_order"
_BY_ORDER_KEY = "ix_invoices_purchase_order_key"
_NOT_CANCELLED = sa.text("state <> 'CANCELLED'")
_CHUNK = 1000


def invoice_number_key(number: str) -> str:
    return "".join(c for c in number.casefold() if c.isalnum())


def purchase_order_key(reference: str) -> str:
    return reference if reference.startswith("organisations/") else invoice_number_key(reference)


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT organisation_code, ledger_id, id, supplier, supplier_invoice_number, state, "
            "purchase_order FROM invoices ORDER BY organisation_code, ledger_id, id"
        )
    ).all()
    same: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for org, ledger, invoice, supplier, number, state, _ in rows:
        if state != "CANCELLED":
            same[(org, supplier.strip(), invoice_number_key(number))].append(
                f"{number!r} ({ledger}/{invoice})"
            )
    found = [f"{org} {supplier}: {', '.join(n)}" for (org, supplier, _), n in same.items() if len(n) > 1]
    if found:
        # Said plainly, before anything changes, rather than as the index's failure.
        raise RuntimeError(
            "these supplier invoice numbers differ only in case, spaces or punctuation and "
            "none of them is cancelled; cancel the duplicates before this upgrade: " + "; ".join(found[:20])
        )
    op.drop_index(_BY_NUMBER, table_name="invoices")
    op.drop_index(_BY_ORDER, table_name="invoices")
    op.add_column("invoices", sa.Column("supplier_invoice_key", sa.String(length=300), nullable=True))
    op.add_column("invoices", sa.Column("purchase_order_key", sa.String(length=300), nullable=True))
    update = sa.text(
        "UPDATE invoices SET supplier_invoice_key = :key, supplier = :supplier, "
        "purchase_order = :order, purchase_order_key = :order_key "
        "WHERE organisation_code = :org AND ledger_id = :ledger AND id = :id"
    )
    keys = [
        {
            "key": invoice_number_key(number),
            "supplier": supplier.strip(),
            "order": order.strip(),
            "order_key": purchase_order_key(order.strip()),
            "org": org,
            "ledger": ledger,
            "id": invoice,
        }
        for org, ledger, invoice, supplier, number, _, order in rows
    ]
    for start in range(0, len(keys), _CHUNK):
        bind.execute(update, keys[start : start + _CHUNK])
    with op.batch_alter_table("invoices") as batch:
        batch.alter_column("supplier_invoice_key", existing_type=sa.String(length=300), nullable=False)
        batch.alter_column("purchase_order_key", existing_type=sa.String(length=300), nullable=False)
    op.create_index(_BY_ORDER_KEY, "invoices", ["organisation_code", "purchase_order_key"])
    op.create_index(
        _BY_KEY,
        "invoices",
        ["organisation_code", "supplier", "supplier_invoice_key"],
        unique=True,
        postgresql_where=_NOT_CANCELLED,
        sqlite_where=_NOT_CANCELLED,
    )


def downgrade() -> None:
    op.drop_index(_BY_KEY, table_name="invoices")
    op.drop_index(_BY_ORDER_KEY, table_name="invoices")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("supplier_invoice_key")
        batch.drop_column("purchase_order_key")
    op.create_index(_BY_ORDER, "invoices", ["organisation_code", "purchase_order"])
    op.create_index(
        _BY_NUMBER,
        "invoices",
        ["organisation_code", "supplier", "supplier_invoice_number"],
        unique=True,
        postgresql_where=_NOT_CANCELLED,
        sqlite_where=_NOT_CANCELLED,
    )
