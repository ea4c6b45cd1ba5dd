"""Workers that drive the package's Python API in one process, run by `bench.run`:

- `soak CONFIG CYCLES`: `run_cycle` over every feed, CYCLES times in one process, printing after
  each cycle a JSON line with its seconds, the process's memory (PSS) and its open file descriptors
  (the stand-in for `aggregator run` when the daemon is not measured directly);
- `add-entry CONFIG NAME`: store the newest entry of feed NAME's local file through the store
  API, without publishing, and print its link (the publish-after-one-entry workload);
- `publish CONFIG`: one `publish()` call, what the daemon runs after a cycle (no start-up, no
  scan for hand edits), printing a JSON line with its seconds and the files it wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aggregator.config import load_config
from aggregator.convert import convert_entry
from aggregator.defaults import PARALLEL_MIN_PUBLISH
from aggregator.parse import parse_feed
from aggregator.pipeline import run_cycle
from aggregator.pool import worker_pool
from aggregator.publish import publish
from aggregator.state import State
from aggregator.store import store_posts
from bench.measure import MB, open_fds, pss_bytes


def soak(config_path: Path, cycles: int) -> None:
    config = load_config(config_path)
    feeds = list(config.feeds)
    for cycle in range(cycles):
        started = time.perf_counter()
        report = run_cycle(config, feeds)
        print(
            json.dumps(
                {
                    "cycle": cycle,
                    "seconds": time.perf_counter() - started,
                    "memory_mb": pss_bytes(os.getpid()) / MB,
                    "fds": open_fds(os.getpid()),
                    "new": sum(o.new for o in report.outcomes),
                    "failed": len(report.failed),
                }
            ),
            flush=True,
        )


def add_entry(config_path: Path, name: str) -> None:
    config = load_config(config_path)
    source = config.feed(name)
    if source is None or source.local_path is None:
        raise SystemExit(f"{name}: not a local feed in {config_path}")
    feed = parse_feed(source.local_path.read_bytes(), "", str(source.local_path))
    now = datetime.now(UTC).replace(microsecond=0)
    post = convert_entry(feed.entries[0], feed, source, ZoneInfo(config.site.timezone), now)
    with State(config.state_path) as state, state.transaction():
        stored = store_posts(state, config.site.feeds_dir, [post], now)
    if stored.new != 1:
        raise SystemExit(f"{name}: the newest entry was already stored")
    print(post.link)


def publish_step(config_path: Path) -> None:
    config = load_config(config_path)
    pool = worker_pool(PARALLEL_MIN_PUBLISH)  # as a cycle and `aggregator publish` have one
    try:
        with State(config.state_path) as state:
            started = time.perf_counter()
            result = publish(config, state, pool=pool)
            seconds = time.perf_counter() - started
    finally:
        if pool is not None:
            pool.shutdown()
    print(json.dumps({"seconds": seconds, "written": len(result.written)}))


def main() -> None:
    parser = argparse.ArgumentParser(description="Drive the aggregator's API in one process.")
    commands = parser.add_subparsers(dest="command", required=True)
    soak_parser = commands.add_parser("soak")
    soak_parser.add_argument("config", type=Path)
    soak_parser.add_argument("cycles", type=int)
    add_parser = commands.add_parser("add-entry")
    add_parser.add_argument("config", type=Path)
    add_parser.add_argument("name")
    publish_parser = commands.add_parser("publish")
    publish_parser.add_argument("config", type=Path)
    args = parser.parse_args()
    if args.command == "soak":
        soak(args.config, args.cycles)
    elif args.command == "publish":
        publish_step(args.config)
    else:
        add_entry(args.config, args.name)


if __name__ == "__main__":
    main()
