"""The ``@retry`` decorator: attempts, backoff, per-attempt timeouts and named semaphores.

Put it on bus *handlers* (``bus.on(MyEvent, handler)`` with ``handler`` decorated), never around
``emit()``: retrying an emit creates a new event per attempt.

Everything here is built on anyio, so a decorated coroutine function behaves the same on asyncio and on
trio. Semaphores of the ``global``, ``class`` and ``instance`` scopes live per event-loop run (an
:class:`anyio.lowlevel.RunVar`), so an asyncio run and a trio run in one process never share a primitive.
The ``multiprocess`` scope uses lock files (``portalocker``) under
``<tempfile.gettempdir()>/bubus_anyio_semaphores``, shared by every process on the machine.

Cancellation (``anyio.get_cancelled_exc_class()``) is never retried, swallowed or converted: only
:class:`Exception` subclasses count as failed attempts.

Longer than 500 lines because it is a public module whose pieces are one API: the decorator, the
validation of its options, and the four semaphore scopes it documents.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import inspect
import logging
import re
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, Literal, ParamSpec, TypeAlias, TypeVar, cast, final, overload

import anyio
import anyio.to_thread
import portalocker
from anyio.lowlevel import RunVar

from ._events._errors import EventBusError
from ._events._handlers import is_async_callable

__all__ = ["RetryTimeoutError", "SemaphoreScope", "SemaphoreTimeoutError", "retry"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

SemaphoreScope: TypeAlias = Literal["global", "class", "instance", "multiprocess"]
#: What ``retry_on_errors`` accepts: an exception class, an exception class name, or a compiled regex.
ErrorMatcher: TypeAlias = type[BaseException] | str | re.Pattern[str]

logger = logging.getLogger("bubus_anyio.retry")

#: Directory (created on first use) holding the ``multiprocess`` scope's lock files.
SEMAPHORE_DIRECTORY = Path(tempfile.gettempdir()) / "bubus_anyio_semaphores"
_FILE_POLL_INTERVAL = 0.02
_FILE_PREFIX_LENGTH = 64
#: Backoff growth stops here (seconds), unless ``retry_after`` itself is longer.
_MAX_BACKOFF_DELAY = 3600.0
_SCOPES: frozenset[str] = frozenset({"global", "class", "instance", "multiprocess"})

# The test suite patches these two to record the backoff delays.
_sleep = anyio.sleep
_sleep_sync = time.sleep


class RetryTimeoutError(EventBusError, TimeoutError):
    """One attempt of a ``@retry``-decorated function ran past ``timeout`` and was cancelled.

    It is retried like any other error when it matches ``retry_on_errors`` (a ``None`` filter, the class
    :class:`TimeoutError` and the name ``"TimeoutError"`` all match it).

    :ivar timeout: the per-attempt limit, in seconds
    :ivar attempt: which attempt (1-based) timed out
    :ivar max_attempts: the total number of attempts allowed
    :ivar function_name: the decorated function's ``__qualname__``
    """

    def __init__(self, message: str, *, timeout: float, attempt: int, max_attempts: int, function_name: str):
        super().__init__(message)
        self.timeout = timeout
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.function_name = function_name


class SemaphoreTimeoutError(EventBusError, TimeoutError):
    """A call with ``semaphore_lax=False`` waited ``semaphore_timeout`` for a semaphore slot in vain.

    The decorated function did not run at all.

    :ivar semaphore_name: the semaphore's key (``name``, ``ClassName.name`` or ``<id>.name``)
    :ivar semaphore_limit: the semaphore's size
    :ivar timeout: how long the call waited, in seconds
    """

    def __init__(self, message: str, *, semaphore_name: str, semaphore_limit: int, timeout: float):
        super().__init__(message)
        self.semaphore_name = semaphore_name
        self.semaphore_limit = semaphore_limit
        self.timeout = timeout


_SemaphoreKey: TypeAlias = tuple[str, str]
# Which primitive a slot belongs to: the async (anyio) ones, the thread ones of sync functions, or the lock
# files of the multiprocess scope (shared by both paths). Only a slot of the same primitive is borrowed.
_SlotKind: TypeAlias = Literal["async", "thread", "file"]
_HeldKey: TypeAlias = tuple[_SlotKind, str, str]


@final
class _Slot:
    """One semaphore slot taken by a call, lent to the calls made in its context.

    The context variable :data:`_held` maps keys to the live :class:`_Slot` objects, so every context
    started inside the call (nested calls, subtasks, an event bus's emit-time context) sees the *same*
    object, not a copy of a "held" flag. A call finding a slot that is still held borrows it instead of
    waiting for (and, with recursion, deadlocking on) another one. The slot goes back to the semaphore
    when its owner *and* every borrower are done, so a borrower that outlives the owning call (a task
    started into an outer task group, a child event's handler) still counts against the limit, and a call
    arriving after that finds it released and waits for a real slot.
    """

    __slots__ = ("_lock", "_release", "_users")

    def __init__(self, release: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._release = release
        self._users = 1

    @property
    def released(self) -> bool:
        return self._users == 0

    def borrow(self) -> bool:
        """Join the slot if it is still held; ``False`` when it was already given back."""
        with self._lock:
            if self._users == 0:
                return False
            self._users += 1
            return True

    def leave(self) -> None:
        """Drop one user (owner or borrower); the last one gives the slot back."""
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            self._release()


_held: contextvars.ContextVar[Mapping[_HeldKey, _Slot]] = contextvars.ContextVar(
    "bubus_anyio.retry.held_semaphores", default=MappingProxyType({})
)


def _held_key(key: _SemaphoreKey, *, sync: bool) -> _HeldKey:
    scope, name = key
    kind: _SlotKind = "file" if scope == "multiprocess" else "thread" if sync else "async"
    return (kind, scope, name)


def _borrow(held_key: _HeldKey) -> _Slot | None:
    """The live slot of ``held_key`` this context inherited, joined; ``None`` if there is none."""
    slot = _held.get().get(held_key)
    if slot is not None and slot.borrow():
        return slot
    return None


def _enter(held_key: _HeldKey, release: Callable[[], None]) -> tuple[_Slot, contextvars.Token[Any]]:
    slot = _Slot(release)
    token = _held.set({**_held.get(), held_key: slot})
    return slot, token


class _Registry(Generic[T]):
    """Named primitives, created on first use and dropped when their last user checks them in."""

    def __init__(self) -> None:
        self._entries: dict[_SemaphoreKey, tuple[T, int]] = {}

    def checkout(self, key: _SemaphoreKey, factory: Callable[[], T]) -> T:
        primitive, users = self._entries.get(key) or (factory(), 0)
        self._entries[key] = (primitive, users + 1)
        return primitive

    def checkin(self, key: _SemaphoreKey) -> None:
        primitive, users = self._entries[key]
        if users <= 1:
            del self._entries[key]
        else:
            self._entries[key] = (primitive, users - 1)


_run_semaphores: RunVar[_Registry[anyio.Semaphore]] = RunVar("bubus_anyio.retry.semaphores")
_thread_semaphores: _Registry[threading.BoundedSemaphore] = _Registry()
_thread_semaphores_lock = threading.Lock()


def _current_run_registry() -> _Registry[anyio.Semaphore]:
    try:
        return _run_semaphores.get()
    except LookupError:
        registry: _Registry[anyio.Semaphore] = _Registry()
        _run_semaphores.set(registry)
        return registry


def _file_stem(name: str) -> str:
    """The lock-file stem of a semaphore name: a readable prefix plus a hash of the exact name.

    The hash keeps names that sanitise alike (``"a/b c"``, ``"a_b_c"``) on separate files.
    """
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:_FILE_PREFIX_LENGTH]
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{readable}-{digest}"


def _file_semaphore(name: str, limit: int) -> portalocker.BoundedSemaphore:
    return portalocker.BoundedSemaphore(limit, name=_file_stem(name), directory=str(SEMAPHORE_DIRECTORY))


def _try_file_slot(semaphore: portalocker.BoundedSemaphore) -> bool:
    SEMAPHORE_DIRECTORY.mkdir(parents=True, exist_ok=True)
    return semaphore.try_lock(semaphore.get_filenames())


async def _acquire_file_slot(
    name: str, limit: int, wait: float | None
) -> portalocker.BoundedSemaphore | None:
    """Poll the lock files from a worker thread until a slot is free or ``wait`` runs out.

    Cancellation lands between polls (each poll is a short non-blocking sweep), and a slot taken by a
    poll that cancellation interrupted is given back.
    """
    semaphore = _file_semaphore(name, limit)
    deadline = None if wait is None else anyio.current_time() + wait
    while True:
        try:
            if await anyio.to_thread.run_sync(_try_file_slot, semaphore):
                return semaphore
        except BaseException:
            semaphore.release()
            raise
        if deadline is not None and anyio.current_time() >= deadline:
            return None
        await anyio.sleep(_FILE_POLL_INTERVAL)


def _acquire_file_slot_sync(name: str, limit: int, wait: float | None) -> portalocker.BoundedSemaphore | None:
    semaphore = _file_semaphore(name, limit)
    deadline = None if wait is None else time.monotonic() + wait
    while not _try_file_slot(semaphore):
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(_FILE_POLL_INTERVAL)
    return semaphore


async def _acquire_with_timeout(semaphore: anyio.Semaphore, wait: float | None) -> bool:
    if wait is None:
        await semaphore.acquire()
        return True
    with anyio.move_on_after(wait):
        await semaphore.acquire()
        return True
    return False


def _compile_matchers(
    retry_on_errors: Sequence[ErrorMatcher] | ErrorMatcher | None,
) -> tuple[ErrorMatcher, ...]:
    if retry_on_errors is None:
        return ()
    items: Sequence[object] = (
        [retry_on_errors] if isinstance(retry_on_errors, str | re.Pattern | type) else list(retry_on_errors)
    )
    for item in items:
        if not (
            isinstance(item, str | re.Pattern) or (isinstance(item, type) and issubclass(item, BaseException))
        ):
            raise TypeError(
                f"retry_on_errors items must be exception classes, class-name strings or compiled regexes, "
                f"not {item!r}"
            )
    return tuple(cast("Sequence[ErrorMatcher]", items))


def _reject_awaitable(fn: Callable[..., Any], result: object) -> None:
    """A call taken for sync returned an awaitable: close it (no "never awaited" warning) and say why."""
    close = getattr(result, "close", None)
    if inspect.iscoroutine(result) and callable(close):
        close()
    name = getattr(fn, "__qualname__", repr(fn))
    raise TypeError(
        f"@retry treated {name} as a sync function, but calling it returned an awaitable "
        f"({type(result).__name__}): it is async. Decorate the coroutine function itself (or a wrapper "
        f"that is a coroutine function or sets __wrapped__), so that retries, timeouts and semaphores "
        f"apply to the awaited call."
    )


def _matches(matcher: ErrorMatcher, error: Exception) -> bool:
    if isinstance(matcher, str):
        return any(cls.__name__ == matcher for cls in type(error).__mro__)
    if isinstance(matcher, re.Pattern):
        return matcher.search(f"{type(error).__name__}: {error}") is not None
    return isinstance(error, matcher)


@final
class _Retry:
    """The validated options of one ``retry(...)`` call; applying it to a function decorates it."""

    def __init__(
        self,
        *,
        max_attempts: int,
        retry_after: float,
        retry_backoff_factor: float,
        retry_on_errors: Sequence[ErrorMatcher] | ErrorMatcher | None,
        timeout: float | None,
        semaphore_limit: int | None,
        semaphore_name: str | Callable[..., str] | None,
        semaphore_lax: bool,
        semaphore_scope: SemaphoreScope,
        semaphore_timeout: float | None,
    ) -> None:
        if retry_after < 0 or retry_backoff_factor < 0:
            raise ValueError("retry_after and retry_backoff_factor must be >= 0")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be None or > 0, not {timeout!r}")
        if semaphore_scope not in _SCOPES:
            raise ValueError(f"semaphore_scope must be one of {sorted(_SCOPES)}, not {semaphore_scope!r}")
        self.max_attempts = max(1, int(max_attempts))
        self.retry_after = retry_after
        self.retry_backoff_factor = retry_backoff_factor
        self.matchers = _compile_matchers(retry_on_errors)
        self.timeout = timeout
        self.semaphore_limit = semaphore_limit if semaphore_limit and semaphore_limit > 0 else None
        self.semaphore_name = semaphore_name
        self.semaphore_lax = semaphore_lax
        self.semaphore_scope: SemaphoreScope = semaphore_scope
        self.semaphore_timeout = semaphore_timeout

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Callable[P, R]: ...
    def __call__(self, fn: Callable[P, Any], /) -> Callable[P, Any]:
        if is_async_callable(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self._call_async(fn, args, kwargs)

            return async_wrapper

        @functools.wraps(fn)
        def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            return self._call_sync(fn, args, kwargs)

        return sync_wrapper

    # -- policy ---------------------------------------------------------------------------------------

    def _should_retry(self, error: Exception) -> bool:
        return not self.matchers or any(_matches(m, error) for m in self.matchers)

    def _delay_after(self, attempt: int) -> float:
        """``retry_after * factor ** (attempt - 1)``, in float, growing to at most an hour (or
        ``retry_after`` when that is longer)."""
        if self.retry_after == 0:
            return 0.0
        cap = max(self.retry_after, _MAX_BACKOFF_DELAY)
        try:
            delay = self.retry_after * float(self.retry_backoff_factor) ** (attempt - 1)
        except OverflowError:
            return cap
        return min(delay, cap)

    def _on_failure(self, fn: Callable[..., Any], error: Exception, attempt: int) -> float | None:
        """Decide after a failed attempt: the delay before the next one, or ``None`` to re-raise."""
        name = getattr(fn, "__qualname__", repr(fn))
        if not self._should_retry(error):
            return None
        if attempt >= self.max_attempts:
            logger.warning(
                "%s failed on attempt %d/%d, giving up: %s: %s",
                name, attempt, self.max_attempts, type(error).__name__, error,
            )  # fmt: skip
            return None
        delay = self._delay_after(attempt)
        logger.warning(
            "%s failed on attempt %d/%d, retrying in %.3gs: %s: %s",
            name, attempt, self.max_attempts, delay, type(error).__name__, error,
        )  # fmt: skip
        return delay

    def _semaphore_key(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _SemaphoreKey:
        if callable(self.semaphore_name):
            name = str(self.semaphore_name(*args, **kwargs))
        else:
            name = self.semaphore_name or getattr(fn, "__qualname__", repr(fn))
        scope = self.semaphore_scope
        if scope == "class" and args:
            owner = args[0]
            name = f"{(owner if isinstance(owner, type) else type(owner)).__name__}.{name}"
        elif scope == "instance" and args:
            name = f"{id(args[0])}.{name}"
        elif scope in ("class", "instance"):
            scope = "global"  # nothing to scope by: behave like a global semaphore
        return (scope, name)

    def _semaphore_wait(self) -> float | None:
        """Seconds to wait for a slot, ``None`` for no limit."""
        if self.semaphore_timeout is None:
            if self.timeout is None or self.semaphore_limit is None:
                return None
            return self.timeout * max(1, self.semaphore_limit - 1)
        return self.semaphore_timeout if self.semaphore_timeout > 0 else None

    def _on_semaphore_timeout(self, name: str, wait: float | None) -> None:
        limit = self.semaphore_limit or 0
        waited = wait or 0.0
        if not self.semaphore_lax:
            raise SemaphoreTimeoutError(
                f"Timed out after {waited}s waiting for a slot of semaphore {name!r} (limit {limit})",
                semaphore_name=name,
                semaphore_limit=limit,
                timeout=waited,
            )
        logger.warning(
            "Timed out after %ss waiting for a slot of semaphore %r (limit %d); proceeding without it",
            waited, name, limit,
        )  # fmt: skip

    # -- async path -----------------------------------------------------------------------------------

    async def _call_async(
        self, fn: Callable[..., Coroutine[Any, Any, Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self.semaphore_limit is None:
            return await self._attempts_async(fn, args, kwargs)
        key = self._semaphore_key(fn, args, kwargs)
        held_key = _held_key(key, sync=False)
        borrowed = _borrow(held_key)
        if borrowed is not None:
            try:
                return await self._attempts_async(fn, args, kwargs)
            finally:
                borrowed.leave()
        release = await self._acquire_async(key)
        if release is None:
            return await self._attempts_async(fn, args, kwargs)
        slot, token = _enter(held_key, release)
        try:
            return await self._attempts_async(fn, args, kwargs)
        finally:
            _held.reset(token)
            slot.leave()

    async def _acquire_async(self, key: _SemaphoreKey) -> Callable[[], None] | None:
        """Take a slot; return the function that gives it back, or ``None`` (lax, timed out)."""
        assert self.semaphore_limit is not None
        limit, wait = self.semaphore_limit, self._semaphore_wait()
        scope, name = key
        if scope == "multiprocess":
            file_slot = await _acquire_file_slot(name, limit, wait)
            if file_slot is not None:
                return file_slot.release
        else:
            registry = _current_run_registry()
            semaphore = registry.checkout(key, lambda: anyio.Semaphore(limit))
            try:
                acquired = await _acquire_with_timeout(semaphore, wait)
            except BaseException:
                registry.checkin(key)
                raise
            if acquired:

                def release() -> None:
                    semaphore.release()
                    registry.checkin(key)

                return release
            registry.checkin(key)
        self._on_semaphore_timeout(name, wait)
        return None

    async def _attempts_async(
        self, fn: Callable[..., Coroutine[Any, Any, Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        attempt = 1
        while True:
            try:
                return await self._attempt_async(fn, args, kwargs, attempt)
            except Exception as error:
                delay = self._on_failure(fn, error, attempt)
                if delay is None:
                    raise
            await _sleep(delay)
            attempt += 1

    async def _attempt_async(
        self,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        attempt: int,
    ) -> Any:
        if self.timeout is None:
            return await fn(*args, **kwargs)
        with anyio.move_on_after(self.timeout):
            return await fn(*args, **kwargs)
        name = getattr(fn, "__qualname__", repr(fn))
        raise RetryTimeoutError(
            f"{name} timed out after {self.timeout}s (attempt {attempt}/{self.max_attempts})",
            timeout=self.timeout,
            attempt=attempt,
            max_attempts=self.max_attempts,
            function_name=name,
        )

    # -- sync path ------------------------------------------------------------------------------------

    def _call_sync(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.semaphore_limit is None:
            return self._attempts_sync(fn, args, kwargs)
        key = self._semaphore_key(fn, args, kwargs)
        held_key = _held_key(key, sync=True)
        borrowed = _borrow(held_key)
        if borrowed is not None:
            try:
                return self._attempts_sync(fn, args, kwargs)
            finally:
                borrowed.leave()
        release = self._acquire_sync(key)
        if release is None:
            return self._attempts_sync(fn, args, kwargs)
        slot, token = _enter(held_key, release)
        try:
            return self._attempts_sync(fn, args, kwargs)
        finally:
            _held.reset(token)
            slot.leave()

    def _acquire_sync(self, key: _SemaphoreKey) -> Callable[[], None] | None:
        assert self.semaphore_limit is not None
        limit, wait = self.semaphore_limit, self._semaphore_wait()
        scope, name = key
        if scope == "multiprocess":
            file_slot = _acquire_file_slot_sync(name, limit, wait)
            if file_slot is not None:
                return file_slot.release
        else:
            with _thread_semaphores_lock:
                semaphore = _thread_semaphores.checkout(key, lambda: threading.BoundedSemaphore(limit))
            if semaphore.acquire(timeout=wait):

                def release() -> None:
                    semaphore.release()
                    with _thread_semaphores_lock:
                        _thread_semaphores.checkin(key)

                return release
            with _thread_semaphores_lock:
                _thread_semaphores.checkin(key)
        self._on_semaphore_timeout(name, wait)
        return None

    def _attempts_sync(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        attempt = 1
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as error:
                delay = self._on_failure(fn, error, attempt)
                if delay is None:
                    raise
            else:
                if inspect.isawaitable(result):
                    _reject_awaitable(fn, result)
                return result
            if delay > 0:
                _sleep_sync(delay)
            attempt += 1


def retry(
    *,
    max_attempts: int = 1,
    retry_after: float = 0.0,
    retry_backoff_factor: float = 1.0,
    retry_on_errors: Sequence[ErrorMatcher] | ErrorMatcher | None = None,
    timeout: float | None = None,
    semaphore_limit: int | None = None,
    semaphore_name: str | Callable[..., str] | None = None,
    semaphore_lax: bool = True,
    semaphore_scope: SemaphoreScope = "global",
    semaphore_timeout: float | None = None,
) -> _Retry:
    """Decorate a function so that failed calls are retried, optionally under a named semaphore.

    Works on coroutine functions (the result stays a coroutine function with the same signature) and on
    plain functions (the result stays a plain function). Apply it to methods directly, and *under*
    ``@staticmethod`` / ``@classmethod``. One call of the decorated function runs up to ``max_attempts``
    attempts:

    * an attempt that raises an :class:`Exception` matching ``retry_on_errors`` is logged at WARNING on
      the ``bubus_anyio.retry`` logger and, unless it was the last attempt, followed by a delay of
      ``retry_after * retry_backoff_factor ** (n - 1)`` seconds before attempt ``n + 1`` (growing to at
      most an hour, or ``retry_after`` when that is longer);
    * an error that does not match is re-raised at once; after the last attempt the last error is
      re-raised unchanged;
    * cancellation is never retried, swallowed or converted (it is not an :class:`Exception`), whether it
      arrives during an attempt, a delay, or the wait for a semaphore slot.

    Semaphores (``semaphore_limit > 0``): one slot is taken per *call*, before the first attempt, and held
    across every attempt and delay. A call nested in (or recursing from) a call that already holds the
    same semaphore runs inside the parent's slot instead of waiting for a new one, so recursion with
    ``semaphore_limit=1`` cannot deadlock; tasks started inside the call (and handlers of events it
    emits) share the slot the same way while it is held, and keep it taken until they finish even if the
    owning call returns first. A context copied from the call gives no slot once the slot is released.

    "Async" means calling the function produces a coroutine: coroutine functions, ``functools.wraps``
    wrappers and :func:`functools.partial` objects of them, and objects with an ``async def __call__``.
    If a function taken for sync returns an awaitable, it is closed and :class:`TypeError` is raised.

    :param max_attempts: total attempts per call, clamped to at least 1
    :param retry_after: seconds to wait after the first failed attempt
    :param retry_backoff_factor: multiplier applied to the delay after each further failure
    :param retry_on_errors: ``None`` retries any :class:`Exception`; otherwise a sequence (or a single
        item) of exception classes (``isinstance``), class names (matched against every class in the
        error's MRO, so ``"TimeoutError"`` matches :class:`RetryTimeoutError`) and compiled regexes
        (searched in ``f"{type(error).__name__}: {error}"``)
    :param timeout: per-attempt limit in seconds; an attempt that runs longer is cancelled and fails with
        :class:`RetryTimeoutError`. It cannot interrupt a *sync* function (nothing can stop a running
        sync call), so for sync functions it only feeds the default ``semaphore_timeout``.
    :param semaphore_limit: how many calls sharing a semaphore may run at once; ``None`` or ``<= 0``
        disables the semaphore
    :param semaphore_name: the semaphore's name, or a callable receiving the call's ``(*args, **kwargs)``
        and returning it; defaults to the function's ``__qualname__``
    :param semaphore_lax: when the wait for a slot times out, ``True`` logs a warning and runs without a
        slot, ``False`` raises :class:`SemaphoreTimeoutError` without running the function
    :param semaphore_scope: which calls share a semaphore: ``"global"`` (by name, within one event-loop
        run), ``"class"`` (key ``ClassName.name``, from the first argument's type, or the first argument
        itself when it is a class), ``"instance"`` (key ``<id(first argument)>.name``) or
        ``"multiprocess"`` (by name, across every process on the machine, through lock files). ``class``
        and ``instance`` fall back to ``global`` for a call without positional arguments.
    :param semaphore_timeout: seconds to wait for a slot; ``None`` means ``timeout * max(1, limit - 1)``
        when ``timeout`` is set and no limit otherwise; ``<= 0`` means no limit
    :raises ValueError: at decoration time, for an unknown scope, a negative delay or factor, or a
        ``timeout <= 0``
    :raises TypeError: at decoration time, for a ``retry_on_errors`` item of the wrong kind

    Notes: semaphores of one key are created by the first call and dropped when no call uses them, so
    concurrent calls with different ``semaphore_limit`` values for one key share the first one's size.
    Semaphores of a sync function are :class:`threading.BoundedSemaphore` objects shared by the whole
    process: they limit threads, and a sync call waiting on one blocks its thread (do not contend for
    them from an event-loop thread).
    """
    return _Retry(
        max_attempts=max_attempts,
        retry_after=retry_after,
        retry_backoff_factor=retry_backoff_factor,
        retry_on_errors=retry_on_errors,
        timeout=timeout,
        semaphore_limit=semaphore_limit,
        semaphore_name=semaphore_name,
        semaphore_lax=semaphore_lax,
        semaphore_scope=semaphore_scope,
        semaphore_timeout=semaphore_timeout,
    )
