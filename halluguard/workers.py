"""Run a function over chunks in worker processes, results in input order, a bounded number in flight.

``fix`` uses it to spread the text stages (spaCy parse, claims, verify, rewrite) over the cores: each
worker gets chunks of raw input lines and sends back finished output lines, so no parse crosses a
process boundary. On Linux workers are forked (the corrector, its vocabulary and detector are
inherited, not pickled); elsewhere they are spawned, as Python does by default there (then ``work``
must pickle).

- order: results come back in the order of the chunks, whatever order the workers finish in;
- memory: at most ``in_flight`` chunks are queued or held, so memory does not grow with the input;
- ``initializer()`` runs once in each worker before its first item;
- errors: an exception in ``work`` is raised in the caller with the worker's traceback as a note;
  a worker that dies (killed, out of memory) raises :class:`WorkerDied`; either way, and on
  Ctrl-C, the workers are stopped before the exception leaves the ``with`` block.

>>> with OrderedPool(str.upper, workers=2) as pool:
...     list(pool.map(["a", "b", "c"]))
['A', 'B', 'C']
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: most worker processes chosen by default (each holds its own spaCy pipeline)
MAX_DEFAULT_WORKERS = 8


class WorkerDied(RuntimeError):
    """A worker process ended without answering (killed, out of memory, crashed interpreter)."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers() -> int:
    """One worker per usable core, at most :data:`MAX_DEFAULT_WORKERS`."""
    return max(1, min(usable_cores(), MAX_DEFAULT_WORKERS))


class OrderedPool(Generic[T, R]):
    """``workers`` processes applying ``work`` to items; :meth:`map` yields the results in order."""

    def __init__(self, work: Callable[[T], R], workers: int, in_flight: int | None = None,
                 initializer: Callable[[], None] | None = None, start_method: str | None = None):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.work = work
        self.initializer = initializer
        self.workers = workers
        self.in_flight = max(in_flight or 2 * workers, workers)
        if start_method is None:
            start_method = "fork" if sys.platform.startswith("linux") else "spawn"
        self._context = multiprocessing.get_context(start_method)
        self._processes: list[Any] = []
        self._tasks: Any = None
        self._results: Any = None

    def __enter__(self) -> OrderedPool[T, R]:
        self._tasks = self._context.Queue()
        self._results = self._context.Queue()
        for _ in range(self.workers):
            process = self._context.Process(target=_serve, daemon=True,
                                            args=(self.work, self._tasks, self._results, self.initializer))
            process.start()
            self._processes.append(process)
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        self.close(graceful=kind is None)

    def map(self, items: Iterable[T]) -> Iterator[R]:
        """The results of ``work(item)`` for each item, in the order of ``items``."""
        source = iter(items)
        sent = received = 0
        done: dict[int, R] = {}
        exhausted = False
        while True:
            while not exhausted and sent - received < self.in_flight:
                item = next(source, _END)
                if item is _END:
                    exhausted = True
                else:
                    self._tasks.put((sent, item))
                    sent += 1
            while received in done:
                yield done.pop(received)
                received += 1
            if received == sent and exhausted:
                return
            if not exhausted and sent - received < self.in_flight:
                continue  # room again: send more before waiting
            index, ok, payload = self._next_result()
            if not ok:
                raise _rebuild(payload)
            done[index] = payload

    def _next_result(self) -> tuple[int, bool, Any]:
        while True:
            try:
                return self._results.get(timeout=0.5)
            except queue.Empty:
                dead = [p for p in self._processes if not p.is_alive()]
                if dead:
                    codes = ", ".join(str(p.exitcode) for p in dead)
                    raise WorkerDied(f"{len(dead)} of {self.workers} worker processes ended unexpectedly "
                                     f"(exit code {codes}); run again with --resume to continue") from None

    def close(self, graceful: bool = True) -> None:
        """Stop the workers: let them finish their queue when ``graceful``, else terminate them."""
        if graceful:
            for _ in self._processes:
                self._tasks.put(None)
        for process in self._processes:
            if graceful:
                process.join(timeout=10)
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():  # ignored SIGTERM: a hung native call
                process.kill()
                process.join()
        for channel in (self._tasks, self._results):
            if channel is not None:
                channel.cancel_join_thread()  # never block exit on items nobody will read
                channel.close()
        self._processes.clear()


_END = object()


def _serve(work: Callable[[Any], Any], tasks: Any, results: Any,
           initializer: Callable[[], None] | None) -> None:
    """A worker's loop: ``work`` each task until the ``None`` sentinel; report the first error and stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    if initializer is not None:
        initializer()
    while True:
        task = tasks.get()
        if task is None:
            return
        index, item = task
        try:
            results.put((index, True, work(item)))
        except BaseException as error:  # sent to the parent, which raises it
            results.put((index, False, _portable(error)))
            return


def _portable(error: BaseException) -> tuple[bytes | None, str]:
    """The exception pickled (when it pickles) and its traceback text."""
    text = "".join(traceback.format_exception(error))
    try:
        blob: bytes | None = pickle.dumps(error)
        pickle.loads(blob)
    except Exception:
        blob = None
    return blob, text


def _rebuild(payload: tuple[bytes | None, str]) -> BaseException:
    blob, text = payload
    error = pickle.loads(blob) if blob is not None else RuntimeError(text.strip().splitlines()[-1])
    error.add_note(f"raised in a worker process:\n{text}")
    return error
