"""The `aggregator` command line: parse arguments, run a command, map outcomes to exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from aggregator import __version__
from aggregator.config import Config, load_config
from aggregator.errors import ConfigError, FeedError
from aggregator.pipeline import FeedOutcome, run_cycle, select_feeds
from aggregator.publish import publish
from aggregator.state import State

EXIT_OK = 0
EXIT_FEEDS_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aggregator",
        description="Fetch feeds into Hugo Markdown and publish one Atom feed per tag.",
    )
    parser.add_argument("--version", action="version", version=f"aggregator {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        default="config.toml",
        type=Path,
        help="config file (default: ./config.toml)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fetch = commands.add_parser(
        "fetch", parents=[common], help="fetch feeds once, write entries, publish"
    )
    fetch.add_argument("names", nargs="*", metavar="NAME", help="only these feeds")
    commands.add_parser(
        "publish",
        parents=[common],
        help="regenerate output/ from the stored entries, without fetching",
    )
    return parser


def _report(outcome: FeedOutcome) -> None:
    if not outcome.ok:
        print(f"{outcome.name}: {outcome.reason}", file=sys.stderr)


def cmd_fetch(config: Config, args: argparse.Namespace) -> int:
    try:
        feeds = select_feeds(config, args.names)
    except FeedError as exc:
        print(f"aggregator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = run_cycle(config, feeds, progress=_report)
    new = sum(o.new for o in report.outcomes)
    updated = sum(o.updated for o in report.outcomes)
    print(
        f"{len(report.outcomes)} feeds, {len(report.failed)} failed, {new} new, "
        f"{updated} updated entries",
        file=sys.stderr,
    )
    return EXIT_FEEDS_FAILED if report.failed else EXIT_OK


def cmd_publish(config: Config, args: argparse.Namespace) -> int:
    with State(config.state_path) as state:
        result = publish(config, state)
    print(f"{len(result.written)} feeds written, {result.unchanged} unchanged", file=sys.stderr)
    return EXIT_OK


COMMANDS = {"fetch": cmd_fetch, "publish": cmd_publish}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"aggregator: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return COMMANDS[args.command](config, args)


if __name__ == "__main__":
    sys.exit(main())
