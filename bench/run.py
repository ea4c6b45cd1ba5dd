"""`python -m bench.run`: the whole benchmark, side by side with reader and the floor.

Starts the local feed server, runs the workloads (`fetch`: cold and warm at each --feeds for
the floor, reader and us; `publish`; `soak`), prints a table, the soak and PASS/FAIL target
lines, and optionally writes the same figures as JSON. Exit code 0 once everything ran (with
--check: 1 when a target failed), 1 when a workload broke.
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.measure import BenchError
from bench.report import Results, Settings, render, write_json
from bench.server import feed_server
from bench.workloads import fetch_round, profile, publish_workload, soak_workload

WORKLOADS = ("fetch", "publish", "soak")
FULL: dict[str, Any] = {
    "feeds": [200, 1000],
    "repeat": 3,
    "publish_entries": 100_000,
    "publish_tags": 1000,
    "soak_feeds": 50,
    "soak_cycles": 30,
}
QUICK: dict[str, Any] = {
    "feeds": [3, 6],
    "repeat": 1,
    "publish_entries": 400,
    "publish_tags": 8,
    "soak_feeds": 3,
    "soak_cycles": 3,
}
PROFILE_TOP = 25


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark the aggregator against lemon24/reader and an httpx+lxml floor.",
    )
    parser.add_argument(
        "--feeds", type=int, action="append", help="feeds in a fetch run (repeatable; 200, 1000)"
    )
    parser.add_argument("--repeat", type=int, help="runs of each workload, median kept (3)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run: a smoke test")
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)} (all)",
    )
    parser.add_argument("--publish-entries", type=int, help="entries in the publish workload")
    parser.add_argument("--publish-tags", type=int, help="tags in the publish workload")
    parser.add_argument("--soak-feeds", type=int, help="changing feeds in the soak (50)")
    parser.add_argument("--soak-cycles", type=int, help="cycles in the soak (30)")
    parser.add_argument(
        "--soak-inprocess",
        action="store_true",
        help="soak run_cycle in a loop in one process instead of the `aggregator run` daemon",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one cold fetch too")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--workdir", type=Path, help="where temp projects go (a temp folder)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    base = QUICK if args.quick else FULL
    sizes = {key: getattr(args, key) or value for key, value in base.items()}
    workloads = tuple(w.strip() for w in args.workloads.split(",") if w.strip())
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"bench: unknown workloads {sorted(unknown)}; pick from {WORKLOADS}")
    return Settings(
        feeds=tuple(sorted(set(args.feeds or base["feeds"]))),
        repeat=sizes["repeat"],
        publish_entries=sizes["publish_entries"],
        publish_tags=sizes["publish_tags"],
        soak_feeds=sizes["soak_feeds"],
        soak_cycles=sizes["soak_cycles"],
        workloads=workloads,
        soak_daemon=not args.soak_inprocess,
    )


def compile_package() -> None:
    """Byte-compile the aggregator package, as pip does when it installs a wheel: reader and
    every other installed package were compiled at install time, but an editable install is
    not, and where PYTHONDONTWRITEBYTECODE is set each of our processes would compile the
    package from source again (about 65 ms a process here)."""
    import aggregator

    compileall.compile_dir(Path(aggregator.__file__).parent, quiet=1)


def commit() -> str:
    """The measured checkout's commit, `+` when it has uncommitted changes; `?` outside git."""
    import aggregator

    root = Path(aggregator.__file__).parents[1]
    git = ["git", "-C", str(root)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "aggregator"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


def machine() -> dict[str, object]:
    return {
        "commit": commit(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "aggregator": version("aggregator"),
        "reader": version("reader"),
    }


def run(results: Results, workdir: Path, profile_too: bool) -> str:
    """Every chosen workload, each repeat interleaving floor, reader and ours."""
    s = results.settings
    static = max(s.feeds) if "fetch" in s.workloads or profile_too else 0
    churn = s.soak_feeds if "soak" in s.workloads else 0
    profiled = ""
    with feed_server(static, churn) as server:
        if "fetch" in s.workloads:
            for _ in range(s.repeat):
                for index, n in enumerate(s.feeds):
                    # every other size goes ours first: our runs at two sizes sit side by side
                    fetch_round(results, server, n, workdir, ours_first=index % 2 == 1)
        if "publish" in s.workloads:
            publish_workload(results, workdir, s.publish_entries, s.publish_tags)
        if "soak" in s.workloads:
            soak_workload(results, server, workdir, s.soak_feeds, s.soak_cycles, s.soak_daemon)
        if profile_too:
            profiled = profile(workdir, server, min(s.feeds), PROFILE_TOP)
    return profiled


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results = Results(settings=settings_from(args), machine=machine())
    workdir = Path(tempfile.mkdtemp(prefix="aggregator-bench-", dir=args.workdir))
    compile_package()
    try:
        profiled = run(results, workdir, args.profile)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    render(results)
    if profiled:
        print(profiled)
    if args.json:
        write_json(results, args.json)
    failed = [t for t in results.targets() if not t.passed]
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
