"""The exception tree: one root, branches that carry the config file or the feed concerned."""

from __future__ import annotations


class AggregatorError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(AggregatorError):
    """A mistake in config.toml, reported with the file, the key and what was expected."""

    def __init__(self, path: str, key: str, expected: str, line: int | None = None) -> None:
        self.path = path
        self.key = key
        self.expected = expected
        self.line = line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key}: {expected}")


class FeedError(AggregatorError):
    """One feed could not be fetched or parsed; the others go on."""

    def __init__(self, feed: str, reason: str) -> None:
        self.feed = feed
        self.reason = reason
        super().__init__(f"{feed}: {reason}")


class LockHeldError(AggregatorError):
    """Another aggregator process holds the writer lock."""

    def __init__(self, lock_path: str) -> None:
        self.lock_path = lock_path
        super().__init__(f"another aggregator process holds the lock ({lock_path})")


class LockFileError(AggregatorError):
    """The writer lock's file cannot be made or opened (no permission, a folder in its place)."""

    def __init__(self, lock_path: str, reason: str) -> None:
        super().__init__(f"cannot use the lock file {lock_path}: {reason}")


class StateError(AggregatorError):
    """The state database cannot be used: damaged, locked, not writable, on a full disk, or made
    by a newer version."""


class StateDamagedError(StateError):
    """The state database is corrupt or not a database at all: only moving it away helps."""


class StateUnwritableError(StateError):
    """This process cannot write the state database: no permission, a full disk, a file size
    limit. The database itself is sound."""


class UsageError(AggregatorError):
    """A command asked for something that cannot be done as asked (exit code 2)."""


class ParseError(AggregatorError):
    """The bytes are not a feed we can read; the message says why."""
