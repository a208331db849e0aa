"""Bounded retries with full jitter for conflicts between concurrent transactions."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from services.domain.errors import version_conflict
from services.ports import ConcurrentChange

T = TypeVar("T")
P = ParamSpec("P")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """8 attempts; waits drawn from [0, min(cap, base * 2**n)): at most 0.226 s in all."""

    attempts: int = 8
    base_delay: float = 0.002
    max_delay: float = 0.1

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


POLICY = RetryPolicy()
# How many internal retries this process has made; the load runs and bench/ report it.
retry_count = 0


def retry_on_conflict(
    use_case: Callable[P, Coroutine[object, object, T]],
) -> Callable[P, Coroutine[object, object, T]]:
    """Run the use case (one whole unit of work) again while it loses a race to another
    transaction (ConcurrentChange), at most POLICY.attempts times in all.

    When the budget is spent: VERSION_CONFLICT with the order's version as last seen,
    placed at the client's `expected_version` only if it sent one.
    """
    signature = inspect.signature(use_case)

    @functools.wraps(use_case)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        global retry_count  # noqa: PLW0603 - a process-wide counter, read by benchmarks
        for attempt in range(POLICY.attempts):
            try:
                return await use_case(*args, **kwargs)
            except ConcurrentChange as conflict:
                if attempt + 1 == POLICY.attempts:
                    log.warning("retry budget of %d attempts spent", POLICY.attempts)
                    sent = signature.bind(*args, **kwargs).arguments.get("expected_version")
                    raise version_conflict(conflict.current_version or 0, sent) from None
                retry_count += 1
                wait = POLICY.delay(attempt)
                # One line per retry, so runs over several processes can count them.
                log.info("conflict on attempt %d; retrying in %.1f ms", attempt + 1, wait * 1000)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    return run
