"""A progress bar that appears only on runs longer than a few seconds (rich, on stderr).

>>> bar = DelayedProgress(total_bytes=100, quiet=True)
>>> bar.update(50, 10); bar.close()
"""

from __future__ import annotations

import time


class DelayedProgress:
    """Shows records done, records/s and the ETA (from bytes read) after ``delay`` seconds."""

    def __init__(self, total_bytes: int, quiet: bool = False, delay: float = 2.0, label: str = "fixing"):
        self.total_bytes = max(total_bytes, 1)
        self.quiet = quiet
        self.delay = delay
        self.label = label
        self.started = time.perf_counter()
        self._progress = None
        self._task = None

    def update(self, bytes_read: int, records: int) -> None:
        if self.quiet:
            return
        if self._progress is None:
            if time.perf_counter() - self.started < self.delay:
                return
            self._start()
        self._progress.update(self._task, completed=bytes_read, records=records, rate=self._rate(records))

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[records]:,} records"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.label, total=self.total_bytes, records=0, rate="")

    def _rate(self, records: int) -> str:
        seconds = time.perf_counter() - self.started
        return f"{records / seconds:,.0f} rec/s" if seconds > 0 else ""

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
