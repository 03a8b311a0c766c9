"""Database helpers shared by the services modules."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import OperationalError

T = TypeVar("T")
RETRYABLE = (1213, 1205)  # MySQL deadlock, lock wait timeout: the transaction was rolled back whole


def retry_deadlocks(attempts: int = 5) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Run a function that opens its own transaction again when MySQL rolled it back for a deadlock, after a short
    random pause (outside any transaction: the rolled-back one holds no lock), so the two sides do not meet again."""

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> T:
            for attempt in range(1, attempts + 1):
                try:
                    return fn(*args, **kwargs)
                except OperationalError as exc:
                    if not (exc.args and exc.args[0] in RETRYABLE) or attempt == attempts:
                        raise
                    time.sleep(random.uniform(0, 0.02 * attempt))  # noqa: S311 -- jitter, not a secret
            raise AssertionError("unreachable")

        return run

    return wrap
