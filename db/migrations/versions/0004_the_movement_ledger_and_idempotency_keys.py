"""the movement ledger, and idempotency keys

Every change to a balance's on hand or allocated is also a row of `movements`, written
in the same transaction (db/repositories.py). The database refuses to change or delete
a movement; the one update it allows is its own: a deleted line or allocation line
leaves the movements that named it with NULL there (their allocation_name stays).
Balances that exist now get an OPENING movement with their figures, by `system`, so
that for every balance on_hand = sum(on_hand_delta) and allocated = sum(allocated_delta).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "'OPENING', 'RECEIPT', 'WRITE_OFF', 'ALLOCATE', 'DEALLOCATE', 'PACK'"

APPEND_ONLY = """CREATE FUNCTION movements_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The one change allowed: a deleted line or allocation line no longer named.
    IF TG_OP = 'UPDATE'
       AND (NEW.sales_order_line_id IS NULL OR NEW.sales_order_line_id = OLD.sales_order_line_id)
       AND (NEW.allocation_id IS NULL OR NEW.allocation_id = OLD.allocation_id)
       AND (NEW.id, NEW.balance_id, NEW.kind, NEW.on_hand_delta, NEW.allocated_delta,
            NEW.sales_order_id, NEW.allocation_name, NEW.actor, NEW.reason, NEW.request_id,
            NEW.created_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.balance_id, OLD.kind, OLD.on_hand_delta, OLD.allocated_delta,
            OLD.sales_order_id, OLD.allocation_name, OLD.actor, OLD.reason, OLD.request_id,
            OLD.created_at)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'movements are append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$"""
TRIGGER = """CREATE TRIGGER movements_append_only BEFORE UPDATE OR DELETE ON movements
    FOR EACH ROW EXECUTE FUNCTION movements_are_append_only()"""

OPENING = """
INSERT INTO movements (balance_id, kind, on_hand_delta, allocated_delta, actor)
SELECT id, 'OPENING', on_hand, allocated, 'system' FROM inventory_balances ORDER BY id
"""


def upgrade() -> None:
    op.create_table(
        "movements",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("balance_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("on_hand_delta", sa.Integer(), nullable=False),
        sa.Column("allocated_delta", sa.Integer(), nullable=False),
        sa.Column("sales_order_id", sa.BigInteger(), nullable=True),
        sa.Column("sales_order_line_id", sa.BigInteger(), nullable=True),
        sa.Column("allocation_id", sa.BigInteger(), nullable=True),
        sa.Column("allocation_name", sa.Text(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(f"kind IN ({KINDS})", name=op.f("ck_movements_kind_known")),
        sa.CheckConstraint(
            "on_hand_delta <> 0 OR allocated_delta <> 0 OR kind = 'OPENING'",
            name=op.f("ck_movements_moves_stock"),
        ),
        sa.ForeignKeyConstraint(
            ["balance_id"], ["inventory_balances.id"],
            name=op.f("fk_movements_balance_id_inventory_balances"),
        ),
        sa.ForeignKeyConstraint(
            ["sales_order_id"], ["sales_orders.id"],
            name=op.f("fk_movements_sales_order_id_sales_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["sales_order_line_id"], ["sales_order_lines.id"], ondelete="SET NULL",
            name=op.f("fk_movements_sales_order_line_id_sales_order_lines"),
        ),
        sa.ForeignKeyConstraint(
            ["allocation_id"], ["allocations.id"], ondelete="SET NULL",
            name=op.f("fk_movements_allocation_id_allocations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_movements")),
    )  # fmt: skip
    for column in ("balance_id", "sales_order_id", "sales_order_line_id", "allocation_id"):
        op.create_index(op.f(f"ix_movements_{column}"), "movements", [column], unique=False)
    op.execute(APPEND_ONLY)
    op.execute(TRIGGER)
    op.execute(OPENING)
    op.create_table(
        "idempotency_keys",
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_digest", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("media_type", sa.Text(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", "key", name=op.f("pk_idempotency_keys")),
    )  # fmt: skip
    op.create_index(
        op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("movements")
    op.execute("DROP FUNCTION movements_are_append_only()")
