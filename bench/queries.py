"""The GraphQL documents the bench sends, as a client would: constant text, variables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# allocateOrder with what a partner integration reads back (docs/examples).
ALLOCATE = """
mutation Allocate($id: ID!) {
  allocateOrder(id: $id) {
    allocations { id name quantity salesOrderLine { lineNumber } lot { lotNumber }
                  location { code } }
    salesOrder { id version status
      lines { lineNumber quantity quantityAllocated quantityBackordered
              backorders { id name quantity quantityAllocated status } } }
    errors { code field message currentVersion }
  }
}
"""

# Every field an order screen shows, nested down to lots, locations and packed lines.
_ORDER = """
fragment Order on SalesOrder {
  id number customer status version createdAt updatedAt
  lines {
    id lineNumber quantity quantityAllocated quantityPacked quantityBackordered
    quantityCancelled
    item { id sku name unit serialized onHand allocated available }
    allocations { id name quantity quantityPacked createdAt
                  lot { lotNumber receivedAt expiresAt } location { code name pickSequence } }
    backorders { id name quantity quantityAllocated quantityRemaining status cancelReason }
  }
  packedLines { id quantity packedAt salesOrderLine { lineNumber } allocations { name } }
}
"""

ORDER_SCREEN = (
    """
query OrderScreen($number: String!) { salesOrder(number: $number) { ...Order } }
"""
    + _ORDER
)

ORDER_PAGE = (
    """
query OrderPage($first: Int!) {
  salesOrders(first: $first) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { ...Order } }
  }
}
"""
    + _ORDER
)


def body(query: str, **variables: Any) -> dict[str, Any]:
    return {"query": query, "variables": variables}


def write_body(path: Path, query: str, **variables: Any) -> Path:
    """A request body for wrk; "__ID__" in a variable is replaced per request."""
    path.write_text(json.dumps(body(query, **variables)))
    return path
