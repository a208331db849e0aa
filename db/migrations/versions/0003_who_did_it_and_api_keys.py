"""who did it: actors on changes, and API keys

Rows that exist before this migration are the server's own: their actor is `system`.
The columns then have no default, so that every new row names its actor.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTORS = {
    "sales_orders": ("actor", "updated_by"),
    "allocations": ("actor",),
    "packed_lines": ("actor",),
    "inventory_adjustments": ("actor",),
}


def upgrade() -> None:
    for table, columns in ACTORS.items():
        for column in columns:
            op.add_column(table, sa.Column(column, sa.Text(), server_default="system"))
            op.alter_column(table, column, nullable=False, server_default=None)
    op.add_column("backorders", sa.Column("cancelled_by", sa.Text(), nullable=True))
    # A backorder cancelled before actors were kept was cancelled by someone unknown.
    op.execute("UPDATE backorders SET cancelled_by = 'system' WHERE status = 'CANCELLED'")
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_column("backorders", "cancelled_by")
    for table, columns in ACTORS.items():
        for column in columns:
            op.drop_column(table, column)
