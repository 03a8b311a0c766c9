"""The web process's side of the job queue: submits grouped across concurrent requests, and one listener for
finished jobs.

Under load, most of a job's cost used to be bookkeeping paid once per job: a committed transaction for its row,
a broker message, and a Redis subscription for a synchronous wait. Here, as databases do with group commit, the
requests that arrive while one group is being stored wait for the next group, which is stored with one insert,
one commit and one message per model (``Grouper``); a lone request is stored at once, with no added wait. One
subscriber per process hears every finished batch and wakes the requests waiting on its jobs
(``FinishedListener``). Neither knows Django: ``serving.web.submit`` hands them what to do; the announcements'
format is ``serving.jobs.announcements``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import redis

from serving.jobs.announcements import FINISHED_CHANNEL, announced

log = logging.getLogger(__name__)
T = TypeVar("T")


class _ProcessThread:
    """A background thread (``_run``) started on first use in each process: a forked child (gunicorn's, Celery's)
    inherits no running thread, so it starts its own, with the state ``_reset`` gives it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._pid = -1
        self._lock = threading.Lock()

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._reset()
                threading.Thread(target=self._run, name=self._name, daemon=True).start()
                self._pid = os.getpid()

    def _reset(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        raise NotImplementedError


class Grouper(_ProcessThread, Generic[T]):
    """Hands items from many threads to ``flush`` on one background thread, as groups of up to ``max_items``.

    ``flush(items)`` returns one entry per item: None when stored, or the exception the item's caller gets.
    ``put`` blocks until the item's group was flushed. The thread starts on first use in each process.
    """

    def __init__(self, flush: Callable[[list[T]], list[BaseException | None]], max_items: int, name: str) -> None:
        super().__init__(name)
        self._flush, self._max = flush, max_items
        self._queue: queue.SimpleQueue[tuple[T, _Slot]] = queue.SimpleQueue()

    def put(self, item: T) -> None:
        """Hand ``item`` over and wait until its group is stored: no timeout of its own, since a caller that gave
        up could not know whether its item was stored after all (the database's timeouts end a stuck flush)."""
        self._ensure_thread()
        slot = _Slot()
        self._queue.put((item, slot))
        slot.done.wait()
        if slot.error is not None:
            raise slot.error

    def waiting(self) -> int:
        """How many items were handed over and wait for the next group (the group being stored not counted)."""
        return self._queue.qsize()

    def _reset(self) -> None:
        self._queue = queue.SimpleQueue()

    def _run(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < self._max:  # what arrived while the last group was stored: no waiting for more
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                errors = self._flush([item for item, _ in group])
                if len(errors) != len(group):
                    raise RuntimeError(f"flush returned {len(errors)} outcomes for {len(group)} items")
            except BaseException as exc:  # noqa: BLE001 -- every caller of the group must hear of it, never hang
                log.exception("%s: storing a group of %d failed", self._name, len(group))
                errors = [exc] * len(group)
            for (_, slot), error in zip(group, errors, strict=True):
                slot.error = error
                slot.done.set()


class _Slot:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


class FinishedListener(_ProcessThread):
    """One Redis subscriber per process to ``FINISHED_CHANNEL``; ``expect(ids)`` returns an event set when any of
    those jobs is announced, or at once when one was announced in the last ``RECENT_SECONDS`` (a job may end
    before its request starts waiting), and ``ended(id)`` the state it was announced with. ``healthy`` is False
    while the subscription is down (messages may be missed then: waiters read the database)."""

    RECENT_SECONDS = 10.0

    def __init__(self, client: Callable[[], redis.Redis]) -> None:
        super().__init__("fsml-finished-listener")
        self._client = client
        self._waiters: dict[str, set[threading.Event]] = {}  # two requests may wait on one job (a retried submit)
        # announced job id -> (when, its ended state or None), oldest first
        self._recent: OrderedDict[str, tuple[float, dict[str, Any] | None]] = OrderedDict()
        self._subscribed = threading.Event()
        self.generation = 0  # counts subscriptions: a waiter that saw another may have missed its message

    @property
    def healthy(self) -> bool:
        return self._subscribed.is_set()

    def expect(self, job_ids: Iterable[str]) -> threading.Event:
        self._ensure_thread()
        event = threading.Event()
        with self._lock:
            for job_id in job_ids:
                if job_id in self._recent:
                    event.set()
                self._waiters.setdefault(job_id, set()).add(event)
        return event

    def ended(self, job_id: str) -> dict[str, Any] | None:
        """The state job ``job_id`` was announced with in the last ``RECENT_SECONDS``, or None."""
        with self._lock:
            hit = self._recent.get(job_id)
        return hit[1] if hit else None

    def forget(self, job_ids: Iterable[str], event: threading.Event) -> None:
        with self._lock:
            for job_id in job_ids:
                if (events := self._waiters.get(job_id)) is not None:
                    events.discard(event)
                    if not events:
                        del self._waiters[job_id]

    def _reset(self) -> None:
        self._waiters, self._recent, self._subscribed = {}, OrderedDict(), threading.Event()

    def _ensure_thread(self) -> None:
        if self._pid != os.getpid():
            super()._ensure_thread()
            self._subscribed.wait(2.0)  # the first request of a process waits for the subscription, once

    def _run(self) -> None:
        while True:
            pubsub = self._client().pubsub()
            try:
                pubsub.subscribe(FINISHED_CHANNEL)
                while True:
                    message = pubsub.get_message(timeout=5.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":  # the server confirmed: from now on nothing is missed
                        self.generation += 1
                        self._subscribed.set()
                    elif message["type"] == "message":
                        self._wake(message["data"])
            except Exception as exc:  # Redis down, or a bad message: never let the thread die; subscribe again
                log.warning("listening for finished jobs failed (%s); waiters read the database meanwhile", exc)
            finally:
                self._subscribed.clear()
                pubsub.close()
            time.sleep(0.5)

    def _wake(self, data: bytes) -> None:
        announced_jobs = announced(data)
        now = time.monotonic()
        with self._lock:
            # A state is kept for the jobs awaited here; of the others (waited on in other processes, or not yet
            # here) only the id: a request that starts waiting later reads its job back.
            self._recent.update(
                (job_id, (now, state if job_id in self._waiters else None)) for job_id, state in announced_jobs
            )
            events = [event for job_id, _ in announced_jobs for event in self._waiters.pop(job_id, ())]
            while self._recent and next(iter(self._recent.values()))[0] < now - self.RECENT_SECONDS:
                self._recent.popitem(last=False)
        for event in events:
            event.set()


def wait_until(
    event: threading.Event, listener: FinishedListener, timeout: float, ended: Callable[[], bool], generation: int
) -> None:
    """Wait for ``event`` up to ``timeout`` seconds. While the listener is down, or once it subscribed again
    since ``generation`` (read before the waiter's ``expect``: a message may have been missed in between),
    ``ended()`` (a database read) is asked every second instead."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if event.wait(min(left, 1.0)):
            return
        if (not listener.healthy or listener.generation != generation) and ended():
            return
