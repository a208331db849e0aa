"""order priority: the fill order of backorders

Existing orders get the default priority 0. The bound keeps priorities a small ordinal
scale and lets the fill order negate it without overflow; the index serves fills and the
salesOrders PRIORITY order (priority first, then creation, then id).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "sales_orders", sa.Column("priority", sa.Integer(), server_default="0", nullable=False)
    )
    op.create_check_constraint(
        op.f("ck_sales_orders_priority_within"), "sales_orders", "priority BETWEEN -1000 AND 1000"
    )
    op.create_index(
        "ix_sales_orders_fill_order",
        "sales_orders",
        [sa.text("priority DESC"), "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_sales_orders_fill_order", table_name="sales_orders")
    op.drop_constraint(op.f("ck_sales_orders_priority_within"), "sales_orders", type_="check")
    op.drop_column("sales_orders", "priority")
