"""Log lines on stderr: one per fetched feed (name, outcome, new/updated entries, duration) and
one per publish, as text or as JSON objects one a line."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.pipeline import FeedOutcome
    from aggregator.publish import PublishResult

LOGGER = logging.getLogger("aggregator")
_FIELDS = ("event", "feed", "outcome", "new", "updated", "seconds", "reason", "written")


def outcome_name(outcome: FeedOutcome) -> str:
    if not outcome.ok:
        return "failed"
    if outcome.skipped:
        return "skipped"
    if outcome.new or outcome.updated:
        return "changed"
    return "unchanged"


def feed_line(outcome: FeedOutcome) -> str:
    """`name: reason` for a failure (the format scripts grep for), `name: skipped until …` for a
    feed not due, else the counts and time, then any notice (a moved feed)."""
    if not outcome.ok:
        return f"{outcome.name}: {outcome.reason}"
    if outcome.skipped:
        return f"{outcome.name}: {outcome.skipped}"
    if outcome.not_modified:
        what = "not modified"
    else:
        what = f"{outcome.new} new, {outcome.updated} updated"
    line = f"{outcome.name}: {what} ({outcome.seconds:.2f} s)"
    return f"{line}; {outcome.notice}" if outcome.notice else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message and the structured fields of the event."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        for key in _FIELDS:
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(log_format: str = "text", level: str = "info") -> None:
    """Send the aggregator's log lines to stderr in `log_format` at `level`; so do errors that
    end a thread (a traceback would break a JSON log)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
        )
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level.upper())
    LOGGER.propagate = False
    scheduler_logger = logging.getLogger("apscheduler")
    scheduler_logger.handlers[:] = [handler]
    scheduler_logger.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    scheduler_logger.propagate = False
    threading.excepthook = _log_thread_error


def _log_thread_error(args: threading.ExceptHookArgs) -> None:
    thread = args.thread.name if args.thread is not None else "a thread"
    LOGGER.error(
        "%s ended by an error: %s: %s",
        thread,
        args.exc_type.__name__,
        args.exc_value,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
    )


def log_outcome(outcome: FeedOutcome) -> None:
    LOGGER.log(
        logging.WARNING if not outcome.ok or outcome.notice else logging.INFO,
        feed_line(outcome),
        extra={
            "event": "feed",
            "feed": outcome.name,
            "outcome": outcome_name(outcome),
            "new": outcome.new,
            "updated": outcome.updated,
            "seconds": round(outcome.seconds, 3),
            "reason": outcome.reason,
        },
    )


def log_publish(result: PublishResult) -> None:
    """The publish's line, and one warning for each problem it met (a hub that failed, …)."""
    for problem in result.problems:
        LOGGER.warning("%s", problem, extra={"event": "publish", "reason": problem})
    written = len(result.written)
    LOGGER.info(
        "publish: %d feeds written, %d unchanged",
        written,
        result.unchanged,
        extra={"event": "publish", "written": written},
    )
