"""The ledger equation (SPEC section 8), as the tests check it: for every balance, on
hand is the sum of its movements' on-hand deltas and allocated the sum of their
allocated deltas."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

UNBALANCED = text(
    """SELECT b.id, b.on_hand, b.allocated,
              coalesce(sum(m.on_hand_delta), 0), coalesce(sum(m.allocated_delta), 0)
       FROM inventory_balances b LEFT JOIN movements m ON m.balance_id = b.id
       GROUP BY b.id
       HAVING b.on_hand <> coalesce(sum(m.on_hand_delta), 0)
           OR b.allocated <> coalesce(sum(m.allocated_delta), 0)
       ORDER BY b.id"""
)


async def unbalanced_on(conn: AsyncConnection) -> list[str]:
    """Each balance whose figures are not what its movements add up to."""
    return [
        f"balance {row[0]}: on hand {row[1]}, allocated {row[2]}; "
        f"its movements add up to {row[3]} and {row[4]}"
        for row in await conn.execute(UNBALANCED)
    ]


async def unbalanced(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return await unbalanced_on(conn)
