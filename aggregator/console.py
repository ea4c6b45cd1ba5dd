"""What people see in a terminal: a rich progress bar during `fetch` on a TTY, plain lines when
output goes to a file or cron, tables for `list` and `status`."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

from aggregator.logs import feed_line

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from aggregator.pipeline import CycleReport, FeedOutcome

QUIET, NORMAL, VERBOSE = -1, 0, 1


class FetchReporter:
    """The `progress` callback of a fetch. Failures are always shown as `name: reason`; feeds with
    news too when there is no progress bar (NORMAL), every feed when VERBOSE."""

    def __init__(self, total: int, verbosity: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.verbosity = verbosity
        self.tty = self.stream.isatty()
        self.console: Console | None = None  # rich, on a terminal only (cron gets plain lines)
        if self.tty:
            from rich.console import Console

            self.console = Console(file=self.stream, highlight=False, emoji=False, soft_wrap=True)
        self.total = total
        self.new = self.updated = self.failed = 0
        self.started = time.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> FetchReporter:
        if self.console is not None and self.verbosity > QUIET:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("fetching"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("feeds · {task.fields[new]} new · {task.fields[failed]} failed"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("fetch", total=self.total, new=0, failed=0)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def feed_done(self, outcome: FeedOutcome) -> None:
        self.new += outcome.new
        self.updated += outcome.updated
        self.failed += not outcome.ok
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, new=self.new, failed=self.failed)
        changed = bool(outcome.new or outcome.updated)
        if (
            not outcome.ok
            or self.verbosity >= VERBOSE
            or (bool(outcome.skipped or outcome.notice) and self.verbosity == NORMAL)
            or (changed and self.verbosity == NORMAL and not self.tty)
        ):
            self._say(feed_line(outcome))

    def summary(self, report: CycleReport) -> None:
        for renamed in report.renamed if self.verbosity > QUIET else ():
            self._say(str(renamed))
        if report.reindexed is not None:
            for problem in report.reindexed.problems:
                self._say(problem)
            if self.verbosity > QUIET:
                self._say(
                    f"the state database was new: {report.reindexed.indexed} entry files "
                    "in feeds/ indexed again"
                )
        for problem in report.published.problems if report.published is not None else ():
            self._say(problem)  # a hub that failed, an entry file that cannot be read
        if self.verbosity >= VERBOSE and report.published is not None:
            self._say(
                f"published: {len(report.published.written)} feeds written, "
                f"{report.published.unchanged} unchanged"
            )
        if self.verbosity > QUIET:
            self._say(
                f"{len(report.outcomes)} feeds, {len(report.failed)} failed, "
                + (f"{len(report.skipped)} skipped, " if report.skipped else "")
                + f"{self.new} new, "
                f"{self.updated} updated entries ({time.monotonic() - self.started:.1f} s)"
            )

    def _say(self, line: str) -> None:
        if self.console is not None:
            self.console.print(line, markup=False)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table on stdout: drawn by rich on a TTY, tab-separated lines with a header otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers, highlight=False)
        for row in rows:
            table.add_row(*row)
        Console(highlight=False, emoji=False).print(table)
        return
    for row in [headers, *rows]:
        print("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in row))
