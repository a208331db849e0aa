"""The tables. Alembic migrations create them; `alembic check` keeps the two in step.

CHECK constraints repeat the rules of SPEC section 4 that one row can state,
as a second guard behind the services.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.domain.order import MAX_PRIORITY, MIN_PRIORITY

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table_of(model: type[Base]) -> Table:
    """The Core table behind a model, typed as such (`__table__` is a FromClause)."""
    return cast(Table, model.__table__)


def _id() -> Mapped[int]:
    return mapped_column(BigInteger, Identity(), primary_key=True)


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = _id()
    sku: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    serialized: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    unit: Mapped[str] = mapped_column(Text, server_default="EA")
    created_at: Mapped[datetime] = _now()


class Location(Base):
    __tablename__ = "locations"
    id: Mapped[int] = _id()
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    pick_sequence: Mapped[int] = mapped_column(Integer, server_default="0")


class Lot(Base):
    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("item_id", "lot_number"),)
    id: Mapped[int] = _id()
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    lot_number: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InventoryBalance(Base):
    __tablename__ = "inventory_balances"
    __table_args__ = (
        UniqueConstraint("lot_id", "location_id"),
        CheckConstraint("allocated >= 0", name="allocated_not_negative"),
        CheckConstraint("allocated <= on_hand", name="allocated_within_on_hand"),
        # The allocation query reads an item's balances that have stock to give.
        Index(None, "item_id", postgresql_where=text("on_hand > allocated")),
        # An item's totals and its balances read all of them.
        Index("ix_inventory_balances_item_id_all", "item_id"),
    )
    id: Mapped[int] = _id()
    # The item is the lot's; kept here too so allocation finds balances with one index.
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    on_hand: Mapped[int] = mapped_column(Integer, server_default="0")
    allocated: Mapped[int] = mapped_column(Integer, server_default="0")
    version: Mapped[int] = mapped_column(Integer, server_default="1")


def _actor() -> Mapped[str]:
    """Who made the change: an API key's name, a token's subject, `anonymous` (open
    mode) or `system` (a migration, or the server's own demo data)."""
    return mapped_column(Text)


class InventoryAdjustment(Base):
    __tablename__ = "inventory_adjustments"
    __table_args__ = (CheckConstraint("quantity <> 0", name="quantity_not_zero"),)
    id: Mapped[int] = _id()
    balance_id: Mapped[int] = mapped_column(ForeignKey("inventory_balances.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = _now()
    actor: Mapped[str] = _actor()


class SalesOrder(Base):
    __tablename__ = "sales_orders"
    __table_args__ = (
        CheckConstraint(
            "status IN ('OPEN', 'PARTIALLY_ALLOCATED', 'ALLOCATED', 'PARTIALLY_PACKED', 'PACKED')",
            name="status_known",
        ),
        CheckConstraint(
            f"priority BETWEEN {MIN_PRIORITY} AND {MAX_PRIORITY}", name="priority_within"
        ),
        # The fill order of backorders, and the salesOrders PRIORITY order.
        Index("ix_sales_orders_fill_order", text("priority DESC"), "created_at", "id"),
    )
    id: Mapped[int] = _id()
    number: Mapped[str] = mapped_column(Text, unique=True)
    customer: Mapped[str] = mapped_column(Text, index=True)
    status: Mapped[str] = mapped_column(Text, server_default="OPEN")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    actor: Mapped[str] = _actor()  # who created it
    updated_by: Mapped[str] = _actor()  # who changed it last
    priority: Mapped[int] = mapped_column(Integer, server_default="0")  # higher is filled first


class SalesOrderLine(Base):
    __tablename__ = "sales_order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_number"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("quantity_cancelled BETWEEN 0 AND quantity", name="cancelled_within"),
    )
    id: Mapped[int] = _id()
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_orders.id"))
    line_number: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    quantity_cancelled: Mapped[int] = mapped_column(Integer, server_default="0")


class Allocation(Base):
    __tablename__ = "allocations"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("quantity_packed BETWEEN 0 AND quantity", name="packed_within"),
    )
    id: Mapped[int] = _id()
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_orders.id"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("sales_order_lines.id"), index=True)
    balance_id: Mapped[int] = mapped_column(ForeignKey("inventory_balances.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    quantity_packed: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = _now()
    actor: Mapped[str] = _actor()


class Backorder(Base):
    __tablename__ = "backorders"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("quantity_allocated BETWEEN 0 AND quantity", name="allocated_within"),
        CheckConstraint("status IN ('OPEN', 'ALLOCATED', 'CANCELLED')", name="status_known"),
        # SPEC 4: a line has at most one OPEN backorder.
        Index(
            "uq_backorders_one_open_per_line",
            "line_id",
            unique=True,
            postgresql_where=text("status = 'OPEN'"),
        ),
    )
    id: Mapped[int] = _id()
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_orders.id"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("sales_order_lines.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    quantity_allocated: Mapped[int] = mapped_column(Integer, server_default="0")
    status: Mapped[str] = mapped_column(Text, server_default="OPEN", index=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    cancelled_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class PackedLine(Base):
    __tablename__ = "packed_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)
    id: Mapped[int] = _id()
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_orders.id"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("sales_order_lines.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    packed_at: Mapped[datetime] = _now()
    actor: Mapped[str] = _actor()


class PackedLineAllocation(Base):
    """Which allocation lines a packed line packed, and how much of each."""

    __tablename__ = "packed_line_allocations"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)
    packed_line_id: Mapped[int] = mapped_column(ForeignKey("packed_lines.id"), primary_key=True)
    allocation_id: Mapped[int] = mapped_column(
        ForeignKey("allocations.id"), primary_key=True, index=True
    )
    quantity: Mapped[int] = mapped_column(Integer)


class Movement(Base):
    """One change to a balance's on hand or allocated, written in the same transaction.
    Append-only: a trigger (migration 0004) refuses UPDATE and DELETE, but for the
    foreign keys' own SET NULL when a line or allocation line is deleted."""

    __tablename__ = "movements"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('OPENING', 'RECEIPT', 'WRITE_OFF', 'ALLOCATE', 'DEALLOCATE', 'PACK')",
            name="kind_known",
        ),
        CheckConstraint(
            "on_hand_delta <> 0 OR allocated_delta <> 0 OR kind = 'OPENING'", name="moves_stock"
        ),
    )
    id: Mapped[int] = _id()
    balance_id: Mapped[int] = mapped_column(ForeignKey("inventory_balances.id"), index=True)
    kind: Mapped[str] = mapped_column(Text)
    on_hand_delta: Mapped[int] = mapped_column(Integer)
    allocated_delta: Mapped[int] = mapped_column(Integer)
    sales_order_id: Mapped[int | None] = mapped_column(ForeignKey("sales_orders.id"), index=True)
    sales_order_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("sales_order_lines.id", ondelete="SET NULL"), index=True
    )
    allocation_id: Mapped[int | None] = mapped_column(
        ForeignKey("allocations.id", ondelete="SET NULL"), index=True
    )
    allocation_name: Mapped[str | None] = mapped_column(Text)  # kept after it is deleted
    actor: Mapped[str] = _actor()
    reason: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)  # None for OPENING
    created_at: Mapped[datetime] = _now()


class IdempotencyKey(Base):
    """A mutation request sent with an Idempotency-Key: its outcome, kept so that a
    repeat gets it again; it commits with the change it made."""

    __tablename__ = "idempotency_keys"
    owner: Mapped[str] = mapped_column(Text, primary_key=True)  # the credential's owner
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    request_digest: Mapped[bytes] = mapped_column(LargeBinary)  # query, operation, variables
    status: Mapped[int | None] = mapped_column(Integer)  # HTTP status of the outcome
    media_type: Mapped[str | None] = mapped_column(Text)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ApiKey(Base):
    """A partner's credential. Only a hash of its secret is kept; its prefix (in the
    secret too) finds it and names it in logs. Revoked keys stay, so that a name is
    never used twice."""

    __tablename__ = "api_keys"
    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(Text, unique=True)
    prefix: Mapped[str] = mapped_column(Text, unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary)  # SHA-256 of the secret
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = _now()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# Numbers for orders whose client did not choose one (SO-000001, ...). Alembic's
# autogenerate does not compare sequences; the first migration creates it.
ORDER_NUMBER_SEQUENCE = Sequence("sales_order_number_seq", metadata=Base.metadata)
