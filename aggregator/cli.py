"""The `aggregator` command line: parse arguments, run a command, map outcomes to exit codes.

Each command is one function registered with `@command`; its arguments come with it. Commands
import what they need themselves, so `list` or `status` start without loading the fetcher."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aggregator import __version__, defaults
from aggregator.config import Config, load_config
from aggregator.console import NORMAL, QUIET, VERBOSE, FetchReporter, print_table
from aggregator.errors import (
    AggregatorError,
    ConfigError,
    FeedError,
    LockHeldError,
    StateError,
    UsageError,
)
from aggregator.lock import writer_lock

EXIT_OK = 0
EXIT_FEEDS_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # as a shell reports a process that SIGPIPE ended

Handler = Callable[[Config, argparse.Namespace], int]


@dataclass(frozen=True)
class Arg:
    flags: tuple[str, ...]
    options: dict[str, Any]


def arg(*flags: str, **options: Any) -> Arg:
    """An argument of a command, as `argparse.ArgumentParser.add_argument` takes it."""
    return Arg(flags, options)


@dataclass(frozen=True)
class Command:
    help: str
    handler: Handler
    arguments: tuple[Arg, ...]
    writes: bool


COMMANDS: dict[str, Command] = {}


def command(
    name: str, help: str, *arguments: Arg, writes: bool = False
) -> Callable[[Handler], Handler]:
    """Register a command; `writes=True` adds `--lock-wait` (the command holds the writer lock)."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(help, handler, arguments, writes)
        return handler

    return register


def _common_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """-c, -v and -q on `parser`; a command's parser takes them with no default (`suppress`),
    so that what was given before the command's name stands."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "-c",
        "--config",
        default=default(Path("config.toml")),
        type=Path,
        help="config file (default: ./config.toml)",
    )
    loudness = parser.add_mutually_exclusive_group()
    for flags, meaning in (
        (("-v", "--verbose"), "more detail; tracebacks on errors"),
        (("-q", "--quiet"), "only errors"),
    ):
        loudness.add_argument(*flags, action="store_true", default=default(False), help=meaning)


def seconds(text: str) -> float:
    """A wait for argparse: a finite number of seconds, 0 or more (filelock waits forever for a
    negative one)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aggregator",
        description="Fetch feeds into Hugo Markdown and publish one Atom feed per tag.",
        epilog="exit codes: 0 fine, 1 some feeds failed, 2 usage or config error, 3 lock held",
    )
    parser.add_argument("--version", action="version", version=f"aggregator {__version__}")
    # the options every command takes, before the command's name or after it
    _common_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, suppress=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, spec in COMMANDS.items():
        sub = commands.add_parser(name, parents=[common], help=spec.help, description=spec.help)
        for argument in spec.arguments:
            sub.add_argument(*argument.flags, **argument.options)
        if spec.writes:
            sub.add_argument(
                "--lock-wait",
                type=seconds,
                default=defaults.LOCK_WAIT,
                metavar="SECONDS",
                help="how long to wait for another aggregator process to finish writing "
                f"(default: {defaults.LOCK_WAIT:g})",
            )
    return parser


def verbosity(args: argparse.Namespace) -> int:
    return QUIET if args.quiet else VERBOSE if args.verbose else NORMAL


def say(args: argparse.Namespace, text: str) -> None:
    """A line for people on stderr, unless --quiet."""
    if not args.quiet:
        print(text, file=sys.stderr)


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


@command(
    "fetch",
    "fetch feeds once, write entries, publish",
    arg("names", nargs="*", metavar="NAME", help="only these feeds"),
    arg(
        "--force",
        action="store_true",
        help="also fetch feeds not due yet (Retry-After, backoff, cache lifetime, gone)",
    ),
    writes=True,
)
def cmd_fetch(config: Config, args: argparse.Namespace) -> int:
    from aggregator.pipeline import run_cycle, select_feeds

    try:
        feeds = select_feeds(config, args.names)
    except FeedError as exc:
        raise UsageError(str(exc)) from None
    reporter = FetchReporter(len(feeds), verbosity(args))
    with writer_lock(config.lock_path, args.lock_wait), reporter:
        report = run_cycle(config, feeds, progress=reporter.feed_done, force=args.force)
    reporter.summary(report)
    return EXIT_FEEDS_FAILED if report.failed else EXIT_OK


@command(
    "run",
    "run the scheduler daemon until SIGTERM or SIGINT; SIGHUP reloads the config",
    arg("--log-format", choices=("text", "json"), default="text", help="log line format"),
    arg(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="least severe log lines shown (default: info)",
    ),
)
def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from aggregator.daemon import Daemon
    from aggregator.logs import LOGGER, setup_logging

    level = "warning" if args.quiet else "debug" if args.verbose else args.log_level
    setup_logging(args.log_format, level)
    try:
        return Daemon(config).run()
    except (LockHeldError, StateError) as exc:  # as a log line: a JSON log stays JSON
        LOGGER.error("%s", exc)
        return EXIT_LOCKED if isinstance(exc, LockHeldError) else EXIT_USAGE


@command(
    "publish",
    "regenerate output/ from feeds/ without fetching, picking up entry files edited or deleted"
    " by hand",
    writes=True,
)
def cmd_publish(config: Config, args: argparse.Namespace) -> int:
    import time

    from aggregator import defaults
    from aggregator.atomic import remove_stale_temps
    from aggregator.pool import worker_pool
    from aggregator.publish import publish
    from aggregator.reconcile import reconcile
    from aggregator.rename import follow_renames
    from aggregator.state import State

    pool = worker_pool(defaults.PARALLEL_MIN_PUBLISH)  # its workers start only when used
    try:
        with writer_lock(config.lock_path, args.lock_wait), State(config.state_path) as state:
            remove_stale_temps(config.site.output_dir)
            renamed = follow_renames(config, state)
            now = time.time()
            hand = reconcile(config, state, now)
            result = publish(config, state, now, pool)
    finally:
        if pool is not None:
            pool.shutdown()
    for line in renamed:
        say(args, str(line))
    for problem in [*hand.problems, *result.problems]:
        print(problem, file=sys.stderr)
    indexed = f", {hand.indexed} entry files the state did not know indexed" if hand.indexed else ""
    say(
        args,
        f"{hand.edited} entries edited and {hand.deleted} deleted by hand{indexed}; "
        f"{len(result.written)} files written, {result.unchanged} unchanged, "
        f"{len(result.removed)} removed",
    )
    return EXIT_FEEDS_FAILED if hand.problems else EXIT_OK


@command(
    "undelete",
    "let the next fetch write again the entries whose files were deleted by hand (of the named"
    " feeds, or of all)",
    arg("names", nargs="*", metavar="NAME"),
    writes=True,
)
def cmd_undelete(config: Config, args: argparse.Namespace) -> int:
    from aggregator.state import State

    unknown = sorted(set(args.names) - {f.name for f in config.feeds})
    if unknown:
        raise UsageError(f"no feed named {', '.join(map(repr, unknown))} in the config")
    with (
        writer_lock(config.lock_path, args.lock_wait),
        State(config.state_path) as state,
        state.transaction(),
    ):
        forgotten = state.forget_deleted(args.names)
    say(
        args,
        f"{forgotten} entries deleted by hand forgotten; the next `aggregator fetch --force`"
        " writes those their feeds still list",
    )
    return EXIT_OK


def port_number(text: str) -> int:
    """A TCP port for argparse: a whole number from 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= defaults.MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"expected a port from 0 to {defaults.MAX_PORT}, got {text!r}"
        )
    return port


@command(
    "serve",
    "serve output/ on 127.0.0.1 (for local subscription and tests; see the README for hosting)",
    arg(
        "--port",
        type=port_number,
        help="port (default: the port of [site] base_url, else 8080; 0: any free port)",
    ),
)
def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    from aggregator.serve import serve

    return serve(config, args.port)


@command(
    "add",
    "add a feed to the config, from its URL or from a web page that links to it",
    arg("url", metavar="URL", help="a feed URL, a web page linking to a feed, or a local path"),
    arg("--name", help="the feed's name (default: from the feed's title)"),
    arg("--tag", dest="tags", action="append", default=[], metavar="TAG", help="a tag (repeat)"),
    arg("--lang", help="the entries' language (default: the feed's own)"),
    writes=True,
)
def cmd_add(config: Config, args: argparse.Namespace) -> int:
    from aggregator.autodiscover import discover
    from aggregator.config_edit import NewFeed, add_feeds
    from aggregator.feedlist import describe, name_from_title, name_taken, unique_name, url_key
    from aggregator.identity import TAG_RULE, usable_tag

    for tag in [*([args.name] if args.name else []), *args.tags]:
        if not usable_tag(tag):
            raise UsageError(f"{tag!r} cannot be a name or tag: it needs {TAG_RULE}")
    names = {f.name for f in config.feeds}
    if args.name and (other := name_taken(args.name, names)):
        raise UsageError(
            f"a feed named {args.name!r} is already in the config"
            if other == args.name
            else f"the feed {other!r} already writes to the folder {args.name!r} would use"
        )
    found = discover(config, args.url)
    for feed in config.feeds:
        if url_key(feed.url) == url_key(found.url):
            say(args, f"{found.url} is already in the config as {feed.name!r}")
            return EXIT_OK
    name = args.name or unique_name(name_from_title(found.title, found.url), names)
    new = NewFeed(name, found.url, tuple(dict.fromkeys(args.tags)), args.lang)
    with writer_lock(config.lock_path, args.lock_wait):
        add_feeds(config.path, [new])
    for line in describe([new]):
        say(args, line)
    return EXIT_OK


@command(
    "remove",
    "remove a feed from the config (its stored entries stay in feeds/)",
    arg("name", metavar="NAME"),
    writes=True,
)
def cmd_remove(config: Config, args: argparse.Namespace) -> int:
    from aggregator.config_edit import remove_feed
    from aggregator.store import entry_folder

    with writer_lock(config.lock_path, args.lock_wait):
        remove_feed(config.path, args.name)
    folder = config.site.feeds_dir / entry_folder(args.name)
    say(args, f"removed {args.name}; its entries stay in {folder}/ until that folder is deleted")
    return EXIT_OK


@command("list", "list the configured feeds", arg("--json", action="store_true", help="as JSON"))
def cmd_list(config: Config, args: argparse.Namespace) -> int:
    from aggregator.schedule import feed_schedule

    if args.json:
        print_json(
            [
                {
                    "name": f.name,
                    "url": f.url,
                    "tags": list(f.tags),
                    "lang": f.lang,
                    "schedule": " ".join(feed_schedule(f, config)),
                }
                for f in config.feeds
            ]
        )
    else:
        print_table(
            ["name", "url", "tags", "lang", "schedule"],
            [
                [f.name, f.url, ", ".join(f.tags), f.lang or "", " ".join(feed_schedule(f, config))]
                for f in config.feeds
            ],
        )
    return EXIT_OK


@command(
    "status",
    "each feed's health: last success, last error, failures, next due time, entries stored",
    arg("--json", action="store_true", help="as JSON"),
)
def cmd_status(config: Config, args: argparse.Namespace) -> int:
    from aggregator import status

    rows = status.collect(config)
    if args.json:
        print_json(status.as_json(rows))
    else:
        print_table(status.TABLE_HEADERS, status.as_table(rows, config.site.timezone))
    return EXIT_OK


@command(
    "import-opml",
    "add the feeds of an OPML file to the config (folders become tags; duplicates skipped)",
    arg("file", type=Path, metavar="FILE"),
    writes=True,
)
def cmd_import_opml(config: Config, args: argparse.Namespace) -> int:
    from aggregator.config_edit import add_feeds
    from aggregator.feedlist import describe, from_outlines
    from aggregator.opml import OpmlError, parse_opml

    try:
        outlines = parse_opml(args.file.read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    except OpmlError as exc:
        raise UsageError(f"{args.file}: {exc}") from None
    result = from_outlines(config, outlines)
    if result.feeds:
        with writer_lock(config.lock_path, args.lock_wait):
            add_feeds(config.path, result.feeds)
    if args.verbose:
        for line in describe(result.feeds) + [f"skipped {s}" for s in result.skipped]:
            print(line, file=sys.stderr)
    for line in result.tags_left_out:
        print(f"tag left out: {line}", file=sys.stderr)
    say(args, f"imported {len(result.feeds)} feeds, skipped {len(result.skipped)}")
    return EXIT_OK


@command(
    "export-opml",
    "write the configured feeds as OPML 2.0",
    arg("-o", "--output", type=Path, metavar="FILE", help="write here (default: stdout)"),
)
def cmd_export_opml(config: Config, args: argparse.Namespace) -> int:
    from aggregator.atomic import write_atomic
    from aggregator.feedlist import to_outlines
    from aggregator.opml import render_opml

    document = render_opml(config.site.title, to_outlines(config))
    if args.output is None:
        sys.stdout.buffer.write(document)
    else:
        write_atomic(args.output, document)
        say(args, f"wrote {len(config.feeds)} feeds to {args.output}")
    return EXIT_OK


@command(
    "check",
    "validate the config; with --online also fetch and parse each feed once, writing nothing",
    arg("--online", action="store_true", help="also try each feed"),
)
def cmd_check(config: Config, args: argparse.Namespace) -> int:
    from aggregator.errors import ParseError
    from aggregator.parse import parse_feed
    from aggregator.probe import probe

    say(args, f"{config.path}: OK, {len(config.feeds)} feeds")
    if not args.online:
        return EXIT_OK
    failed = 0
    for feed, result in zip(config.feeds, probe(config, config.feeds), strict=True):
        try:
            if isinstance(result, FeedError):
                raise result
            parsed = parse_feed(result.body or b"", result.content_type, result.url)
        except (FeedError, ParseError) as exc:
            failed += 1
            reason = exc.reason if isinstance(exc, FeedError) else str(exc)
            print(f"{feed.name}: {reason}", file=sys.stderr)
            continue
        say(args, f"{feed.name}: ok, {len(parsed.entries)} entries ({parsed.title})")
    return EXIT_FEEDS_FAILED if failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].handler(load_config(args.config), args)
    except ConfigError as exc:
        print(f"aggregator: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LockHeldError as exc:
        print(f"aggregator: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except FeedError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FEEDS_FAILED
    except AggregatorError as exc:
        print(f"aggregator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("aggregator: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # what reads the output stopped (`aggregator list | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # for the exit's flush
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # the last resort: one line for people, the traceback on request
        if args.verbose:
            traceback.print_exc()
        hint = "" if args.verbose else " (run with --verbose for the traceback)"
        print(f"aggregator: unexpected error: {type(exc).__name__}: {exc}{hint}", file=sys.stderr)
        return EXIT_FEEDS_FAILED


if __name__ == "__main__":
    sys.exit(main())
