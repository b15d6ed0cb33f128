"""The sweep progress bar: jobs done/total, ETA, failures so far and the workers in use."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class SweepProgress:
    """A Rich progress bar for one sweep (does nothing when ``enabled`` is false)."""

    def __init__(self, title: str, *, total: int, done: int = 0, enabled: bool = True) -> None:
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("ETA"), TimeRemainingColumn(),
                             TextColumn("failed {task.fields[failed]}  workers {task.fields[workers]}"),
                             disable=not enabled, transient=False)
        self._task = self._bar.add_task(title, total=total, completed=done, failed=0, workers="-")

    def __enter__(self) -> "SweepProgress":
        self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.stop()

    def update(self, *, done: int, failed: int, workers: str) -> None:
        self._bar.update(self._task, completed=done, failed=failed, workers=workers)
