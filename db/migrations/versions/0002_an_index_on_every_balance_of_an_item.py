"""an index on every balance of an item

An item's totals (onHand, allocated) and its balances are read by item; the partial
index of 0001 only holds balances with stock to give (what allocation reads).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_inventory_balances_item_id_all", "inventory_balances", ["item_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_inventory_balances_item_id_all", table_name="inventory_balances")
