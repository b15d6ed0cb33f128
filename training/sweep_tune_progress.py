"""The progress bar of ``motocoach sweep tune``: trials done/total and the best objective so far.

A Ray Tune callback (it runs in the driver). Tune pickles its run configuration, callbacks
included, so the Rich bar is left out of the pickled state.
"""

from __future__ import annotations

from ray.tune import Callback
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class TuneBar(Callback):
    def __init__(self, total: int, disable: bool = False) -> None:
        self.total, self.disable = total, disable
        self.best: float | None = None
        self.failed = 0
        self._bar: Progress | None = None
        self._task = None

    def __getstate__(self) -> dict:
        return {"total": self.total, "disable": True, "best": self.best, "failed": self.failed,
                "_bar": None, "_task": None}

    def __enter__(self) -> "TuneBar":
        self._bar = Progress(TextColumn("tune"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
                             TextColumn("{task.description}"), TimeElapsedColumn(), disable=self.disable,
                             transient=True)
        self._bar.start()
        self._task = self._bar.add_task(self._label(), total=self.total)
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def _label(self) -> str:
        best = "-" if self.best is None else f"{self.best:+.2f}"
        return f"best objective {best}, failed {self.failed}"

    def _refresh(self, advance: int = 0) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=advance, description=self._label())

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        value = result.get("objective")
        if value is not None and (self.best is None or value > self.best):
            self.best = float(value)
        self._refresh()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._refresh(advance=1)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.failed += 1
        self._refresh(advance=1)
