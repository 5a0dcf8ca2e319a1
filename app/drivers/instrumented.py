"""Counting at the driver edge: backend failures by driver, lock conflicts by API, lock backend latency.

``instrument`` wraps the protocol methods of one built driver in place (the driver keeps its class, so nothing
that inspects it changes). A ``BackendUnavailable`` is counted once, by the driver that raised it, even when it
travels through another driver (a KMS failure surfacing inside ``storage.put``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from app.core import metrics
from app.core.errors import BackendUnavailable, LockConflict
from app.core.request_context import current_api

D = TypeVar("D")

# The protocol methods of each kind (``app.drivers.*.base``); the ones returning a stream are counted while read.
METHODS = {
    "storage": ("put", "open", "delete", "check"),
    "locks": ("acquire", "release", "get", "get_many", "check"),
    "kms": ("encrypt", "decrypt", "check"),
}
STREAMING = {"open", "encrypt", "decrypt"}
_COUNTED = "_statesman_counted"


def instrument(kind: str, driver: D) -> D:
    """``driver`` with its ``kind``'s protocol methods counted (returns the same object)."""
    backend = str(getattr(driver, "name", type(driver).__name__))
    errors = metrics.driver_errors.labels(kind=kind, backend=backend)
    for method in METHODS[kind]:
        original = getattr(driver, method, None)
        if original is None:
            continue
        wrapped = _counted(original, errors, streaming=method in STREAMING)
        if kind == "locks" and method == "acquire":
            wrapped = _timed_acquire(wrapped, metrics.lock_acquire_duration.labels(backend=backend))
        object.__setattr__(driver, method, wrapped)
    return driver


def _count_once(exc: BackendUnavailable, errors: Any) -> None:
    if not getattr(exc, _COUNTED, False):
        setattr(exc, _COUNTED, True)
        errors.inc()


def _counted(method: Callable[..., Any], errors: Any, *, streaming: bool) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            result = method(*args, **kwargs)
        except BackendUnavailable as exc:
            _count_once(exc, errors)
            raise
        return _counted_stream(result, errors) if streaming else result

    return call


def _counted_stream(chunks: Iterator[bytes], errors: Any) -> Iterator[bytes]:
    try:
        yield from chunks
    except BackendUnavailable as exc:
        _count_once(exc, errors)
        raise


def _timed_acquire(acquire: Callable[..., Any], duration: Any) -> Callable[..., Any]:
    @functools.wraps(acquire)
    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return acquire(*args, **kwargs)
        except LockConflict:
            metrics.lock_conflicts.labels(api=current_api.get()).inc()
            raise
        finally:
            duration.observe(time.perf_counter() - started)

    return call
