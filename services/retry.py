"""Bounded retries with full jitter for conflicts between concurrent transactions."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from services.ports import ConcurrentChange

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """8 attempts; waits drawn from [0, min(cap, base * 2**n)): at most 0.226 s in all."""

    attempts: int = 8
    base_delay: float = 0.002
    max_delay: float = 0.1

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


DEFAULT_POLICY = RetryPolicy()
# How many internal retries this process has made; the load runs report it.
retry_count = 0


async def retrying(
    operation: Callable[[], Awaitable[T]],
    on_exhausted: Callable[[], Awaitable[Exception]],
    policy: RetryPolicy = DEFAULT_POLICY,
) -> T:
    """Run operation (one whole unit of work) again while it hits ConcurrentChange.

    When the budget is spent, raise what on_exhausted builds (a VERSION_CONFLICT).
    """
    global retry_count  # noqa: PLW0603 - a process-wide counter, read by benchmarks
    for attempt in range(policy.attempts):
        try:
            return await operation()
        except ConcurrentChange:
            if attempt + 1 == policy.attempts:
                log.warning("retry budget of %d attempts spent", policy.attempts)
                raise await on_exhausted() from None
            retry_count += 1
            wait = policy.delay(attempt)
            # One line per retry, so runs over several processes can count them.
            log.info("conflict on attempt %d; retrying in %.1f ms", attempt + 1, wait * 1000)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
