"""A cancelled purchase order frees its requisition to be ordered again: one order per
requisition holds for the orders that are not cancelled (a partial unique index), no
longer for every order ever raised.

The downgrade puts back one order per requisition, ever: a database where a requisition
has been ordered again after a cancel fails it, naming the requisitions, before anything
changes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_EVER = "uq_purchase_orders_requisition"
_LIVE = "uq_purchase_orders_live_requisition"
_NOT_CANCELLED = sa.text("state <> 'CANCELLED'")


def upgrade() -> None:
    # On SQLite the batch copies the table without the constraint (0002 named it).
    with op.batch_alter_table("purchase_orders") as batch:
        batch.drop_constraint(op.f(_EVER), type_="unique")
    op.create_index(
        _LIVE,
        "purchase_orders",
        ["organisation_code", "requisition"],
        unique=True,
        postgresql_where=_NOT_CANCELLED,
        sqlite_where=_NOT_CANCELLED,
    )


def downgrade() -> None:
    # Said plainly, rather than as the constraint's failure: which requisitions to resolve.
    found = [
        f"{requisition} ({n} orders)"
        for requisition, n in op.get_bind().execute(
            sa.text(
                "SELECT requisition, count(*) FROM purchase_orders GROUP BY requisition "
                "HAVING count(*) > 1 ORDER BY requisition"
            )
        )
    ]
    if found:
        raise RuntimeError(
            "these requisitions were ordered again after a cancelled order, which the schema "
            "before 0005 cannot hold: " + "; ".join(found[:20])
        )
    op.drop_index(_LIVE, table_name="purchase_orders")
    with op.batch_alter_table("purchase_orders") as batch:
        batch.create_unique_constraint(op.f(_EVER), ["requisition"])
