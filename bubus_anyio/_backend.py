"""The one backend-specific spot: telling a real cancellation from a stray ``CancelledError``, and how
the runloop should wait when its queue is empty.

On trio a ``Cancelled`` exception only ever comes from a cancel scope. On asyncio a ``CancelledError`` can
also escape from awaiting *another* task or future that someone cancelled; that is the handler's own error,
not a cancellation of the bus, and treating it as one would tear the bus down. Python 3.11's
``Task.cancelling()`` says whether the current task has a cancellation request pending.
"""

from __future__ import annotations

import asyncio  # backend-specific on purpose: see the module docstring

__all__ = ["checkpoint_is_cheap", "is_cancelling"]


def is_cancelling(exc: BaseException) -> bool:
    """True when ``exc`` (the backend's cancellation exception) means the current task is being cancelled."""
    if not isinstance(exc, asyncio.CancelledError):
        return True  # trio's Cancelled always comes from a scope
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def checkpoint_is_cheap(cancelled_exc_class: type[BaseException]) -> bool:
    """Whether a bare checkpoint costs less than parking on an event (asyncio: a plain yield; trio: a
    checkpoint goes through a cancel scope). The runloop uses it to choose how to wait when its queue is
    empty; measured in ``benchmarks/`` (emit+await latency)."""
    return issubclass(cancelled_exc_class, asyncio.CancelledError)
