"""The workloads, each run in fresh processes on a fresh temp project, feeding `Results`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from bench import REPO
from bench.measure import MB, BenchError, Run, open_fds, run_measured, tree_memory_bytes
from bench.report import Results
from bench.server import FeedServer
from bench.synth import feed_xml

AGGREGATOR = str(Path(sys.executable).with_name("aggregator"))
TOPICS = 10
# Every synthetic feed is on one host (127.0.0.1); in the wild they are spread over many hosts.
PER_HOST = 64
SOAK_INTERVAL = "1s"
DAEMON_TIMEOUT = 600.0
DAEMON_POLL = 0.1


def fresh(workdir: Path, name: str) -> Path:
    """A new, empty folder under `workdir` (never one reused: see set_aside)."""
    number = 0
    while (workdir / f"{name}-{number}").exists():
        number += 1
    return workdir / f"{name}-{number}"


def set_aside(path: Path, workdir: Path) -> None:
    """Move a finished project out of the way, to be deleted with `workdir` after the last
    measurement: deleting tens of thousands of files keeps the disk busy (journal, discards)
    for seconds, which would land on whatever runs next."""
    path.rename(fresh(workdir, "done"))


def config_text(feeds: Sequence[tuple[str, str, str]], interval: str = "30m") -> str:
    """A bench project's config.toml: (name, url, extra TOML) for each feed."""
    lines = [
        "[site]",
        'title = "Bench digest"',
        'base_url = "https://news.example.org/"',
        'timezone = "Asia/Shanghai"',
        "",
        "[fetch]",
        "allow_private_networks = true",
        f"per_host = {PER_HOST}",
        "",
        "[schedule]",
        f'interval = "{interval}"',
    ]
    for name, url, extra in feeds:
        lines += ["", "[[feeds]]", f'name = "{name}"', f'url = "{url}"', extra]
    return "\n".join(lines) + "\n"


def http_project(root: Path, urls: Sequence[str], interval: str = "30m") -> Path:
    """A project whose feeds are `urls`, each tagged with its name and one of a few topics."""
    root.mkdir(parents=True)
    feeds = [(f"news-{i:04d}", url, f'tags = ["topic-{i % TOPICS}"]') for i, url in enumerate(urls)]
    config = root / "config.toml"
    config.write_text(config_text(feeds, interval), encoding="utf-8")
    return config


def mtimes(*folders: Path) -> dict[Path, int]:
    return {
        path: path.stat().st_mtime_ns
        for folder in folders
        if folder.is_dir()
        for path in folder.rglob("*")
        if path.is_file()
    }


def files_written(before: dict[Path, int], after: dict[Path, int]) -> int:
    """Files created, rewritten or removed between two `mtimes` snapshots."""
    changed = sum(1 for path, stamp in after.items() if before.get(path) != stamp)
    return changed + sum(1 for path in before if path not in after)


def log(message: str) -> None:
    """Progress on stderr, so a long run shows it is alive; the report goes to stdout."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def module(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", name, *args]


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def checked(run: Run, what: str) -> Run:
    if run.returncode != 0:
        raise BenchError(f"{what} exited with {run.returncode}:\n{_tail(run.stderr)}")
    return run


def peer_run(peer: str, mode: str, workdir: Path, urls_file: Path) -> tuple[Run, dict[str, float]]:
    run = checked(
        run_measured(module("bench.peers", peer, mode, str(workdir), str(urls_file)), cwd=REPO),
        f"{peer} {mode}",
    )
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    if figures["failures"]:
        raise BenchError(f"{peer} {mode}: {figures['failures']} feeds failed")
    return run, figures


def fetch_round(
    results: Results, server: FeedServer, feeds: int, workdir: Path, ours_first: bool = False
) -> None:
    """One repeat at N feeds: floor, reader and ours (or ours, reader and floor), each cold
    then warm (every feed 304)."""
    urls = [server.feed_url(i) for i in range(feeds)]
    urls_file = workdir / f"urls-{feeds}.txt"
    urls_file.write_text("\n".join(urls) + "\n")
    steps = [
        partial(peer_round, results, "floor", feeds, urls_file, workdir),
        partial(peer_round, results, "reader", feeds, urls_file, workdir),
        partial(our_round, results, server, urls, workdir),
    ]
    for step in reversed(steps) if ours_first else steps:
        step()


def peer_round(results: Results, peer: str, feeds: int, urls_file: Path, workdir: Path) -> None:
    peer_dir = fresh(workdir, f"{peer}-{feeds}")
    peer_dir.mkdir()
    for mode in ("cold", "warm"):
        run, figures = peer_run(peer, mode, peer_dir, urls_file)
        log(f"{peer} {mode} {feeds}: {figures['seconds']:.2f} s")
        results.figure(f"{peer}.{mode}.{feeds}", f"{peer} {mode}").add(
            figures["seconds"], run.peak_mb, entries=int(figures["entries"])
        )
    set_aside(peer_dir, workdir)


def our_round(results: Results, server: FeedServer, urls: Sequence[str], workdir: Path) -> None:
    feeds = len(urls)
    project = fresh(workdir, f"ours-{feeds}")
    config = http_project(project, urls)
    command = [AGGREGATOR, "fetch", "-c", str(config)]
    startup = checked(run_measured([AGGREGATOR, "--version"]), "aggregator --version")
    results.figure("ours.startup", "start-up and imports").add(startup.seconds, startup.peak_mb)
    cold = checked(run_measured(command), f"aggregator fetch (cold, {feeds} feeds)")
    log(f"ours cold {feeds}: {cold.seconds:.2f} s")
    entries = sum(1 for _ in (project / "feeds").rglob("*.md"))
    results.figure(f"ours.cold.{feeds}", "ours cold").add(
        cold.seconds, cold.peak_mb, entries=entries
    )
    before, served = mtimes(project / "feeds", project / "output"), server.stats()
    warm = checked(run_measured(command), f"aggregator fetch (warm, {feeds} feeds)")
    written = files_written(before, mtimes(project / "feeds", project / "output"))
    answered = server.stats() - served
    log(f"ours warm {feeds}: {warm.seconds:.2f} s, {written} files written")
    results.figure(f"ours.warm.{feeds}", "ours warm").add(
        warm.seconds,
        warm.peak_mb,
        files_written=written,
        requests=answered["feeds"],
        bodies_served=answered["ok"],
    )
    set_aside(project, workdir)


def publish_project(root: Path, entries: int, tags: int) -> tuple[Path, int, int]:
    """`tags // 2` local sources of equal size whose entries carry categories from a pool of
    the other names (entry_categories), so the project has `tags` tags; the config, the entries
    of a source and the size of the category pool."""
    sources = max(1, tags // 2)
    per_source = entries // sources
    (root / "sources").mkdir(parents=True)
    feeds = []
    for i in range(sources):
        path = root / "sources" / f"{i}.xml"
        path.write_bytes(feed_xml(i, entries=per_source, category_pool=tags - sources))
        feeds.append((f"src-{i:04d}", f"sources/{i}.xml", "entry_categories = true"))
    config = root / "config.toml"
    config.write_text(config_text(feeds), encoding="utf-8")
    return config, per_source, tags - sources


def publish_workload(results: Results, workdir: Path, entries: int, tags: int) -> None:
    """Build the project by a real fetch, then time publishing it."""
    project = fresh(workdir, "publish")
    config, per_source, pool = publish_project(project, entries, tags)
    log(f"publish: fetching {entries} entries over {tags} tags")
    build = checked(run_measured([AGGREGATOR, "fetch", "-c", str(config)]), "publish build")
    stored = sum(1 for _ in (project / "feeds").rglob("*.md"))
    published_tags = sum(1 for _ in (project / "output" / "tags").glob("*.xml"))
    results.figure("ours.publish.build", "fetch of the publish project").add(
        build.seconds, build.peak_mb, entries=stored, tags=published_tags
    )
    time_publish(results, project, per_source, pool, published_tags + 1)
    set_aside(project, workdir)


def time_publish(results: Results, project: Path, per_source: int, pool: int, feeds: int) -> None:
    """Publishing a built `publish_project`, in full (empty output/, which must get all `feeds`
    back) and after one new entry stored through the store API (which must reach all.xml):
    once as `aggregator publish` (start-up and the scan for hand edits included), once as the
    publish step alone in a process (what the daemon runs after a cycle). Each new entry goes
    to another of the last sources, whose dates are the newest (feeds are offset by seconds)."""
    config, output = project / "config.toml", project / "output"
    sources = sum(1 for _ in (project / "sources").iterdir())
    ways = {
        "cli": [AGGREGATOR, "publish", "-c", str(config)],
        "step": module("bench.inproc", "publish", str(config)),
    }
    added = 0
    for _ in range(results.settings.repeat):
        for way, command in ways.items():
            if output.exists():
                set_aside(output, project.parent)
            full, full_mb = _publish_run(command, way, "full")
            written = sum(1 for _ in output.rglob("*.xml"))
            if written != feeds:
                raise BenchError(f"full publish wrote {written} feeds, expected {feeds}")
            results.figure(f"ours.publish.{way}.full", f"publish ({way}), all tags").add(
                full, full_mb, feeds=written
            )
            index = sources - 1 - added
            added += 1
            source = project / "sources" / f"{index}.xml"
            source.write_bytes(feed_xml(index, version=1, entries=per_source, category_pool=pool))
            link = checked(
                run_measured(
                    module("bench.inproc", "add-entry", str(config), f"src-{index:04d}"), cwd=REPO
                ),
                "storing one new entry",
            ).stdout.strip()
            before = mtimes(output)
            one, one_mb = _publish_run(command, way, "one new entry")
            if link not in (output / "all.xml").read_text(encoding="utf-8"):
                raise BenchError(f"publish after one new entry: {link} is not in all.xml")
            results.figure(f"ours.publish.{way}.one", f"publish ({way}) after one entry").add(
                one, one_mb, files_written=files_written(before, mtimes(output))
            )


def _publish_run(command: list[str], way: str, what: str) -> tuple[float, float]:
    """Seconds of one publish (the whole command's, or the step's own as it reports them) and
    the process's peak memory."""
    run = checked(run_measured(command, cwd=REPO), f"publish ({way}, {what})")
    seconds = run.seconds if way == "cli" else float(json.loads(run.stdout)["seconds"])
    log(f"publish ({way}) {what}: {seconds:.2f} s")
    return seconds, run.peak_mb


def soak_workload(
    results: Results, server: FeedServer, workdir: Path, feeds: int, cycles: int, daemon: bool
) -> None:
    """Many cycles over feeds that keep changing: the tree's memory (PSS) and open files after each
    cycle, by the real daemon (`aggregator run`) or by `run_cycle` in a loop in one process."""
    project = fresh(workdir, "soak")
    urls = [server.feed_url(i, "churn") for i in range(feeds)]
    config = http_project(project, urls, SOAK_INTERVAL)
    log(
        f"soak: {cycles} cycles over {feeds} changing feeds ({'daemon' if daemon else 'run_cycle'})"
    )
    if daemon:
        samples = _soak_daemon(server, config, feeds, cycles)
        peak = max(s["memory_mb"] for s in samples)
    else:
        command = module("bench.inproc", "soak", str(config), str(cycles))
        run = checked(run_measured(command, cwd=REPO), "soak")
        samples = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        failed = sum(int(s["failed"]) for s in samples)
        if failed:
            raise BenchError(f"soak: {failed} feed fetches failed")
        peak = run.peak_mb
    results.soak = samples
    fig = results.figure("ours.soak", "soak: seconds a cycle, after the first")
    for sample in samples[1:] or samples:
        fig.add(sample["seconds"], peak)
    entries = sum(1 for _ in (project / "feeds").rglob("*.md"))
    fig.counts.update(cycles=len(samples), entries=entries)
    set_aside(project, workdir)


def _soak_daemon(
    server: FeedServer, config: Path, feeds: int, cycles: int
) -> list[dict[str, float]]:
    """`aggregator run`, sampled from outside: a cycle has ended once the next one has asked
    for every feed; its seconds are the time since the previous sample."""
    samples: list[dict[str, float]] = []
    start = server.stats()["churn"]
    began = last = time.monotonic()
    daemon_log = config.parent / "daemon.log"
    with daemon_log.open("wb") as out:
        process = subprocess.Popen([AGGREGATOR, "run", "-c", str(config)], stdout=out, stderr=out)
        try:
            while len(samples) < cycles:
                if process.poll() is not None:
                    output = _tail(daemon_log.read_text())
                    raise BenchError(f"aggregator run exited with {process.returncode}:\n{output}")
                if time.monotonic() - began > DAEMON_TIMEOUT:
                    raise BenchError(f"aggregator run did only {len(samples)} cycles")
                if (server.stats()["churn"] - start) // feeds > len(samples) + 1:
                    now = time.monotonic()
                    samples.append(
                        {
                            "cycle": len(samples),
                            "seconds": now - last,
                            "memory_mb": tree_memory_bytes(process.pid) / MB,
                            "fds": open_fds(process.pid),
                        }
                    )
                    last = now
                time.sleep(DAEMON_POLL)
        finally:
            process.terminate()
            process.wait(timeout=60)
    if process.returncode != 0:
        raise BenchError(f"aggregator run ended with {process.returncode} on SIGTERM")
    return samples


def profile(workdir: Path, server: FeedServer, feeds: int, top: int) -> str:
    """cProfile of one cold `aggregator fetch` (the main process only): the top functions."""
    import io
    import pstats

    project = workdir / "profile"
    shutil.rmtree(project, ignore_errors=True)
    config = http_project(project, [server.feed_url(i) for i in range(feeds)])
    stats_file = project / "fetch.prof"
    command = module(
        "cProfile", "-o", str(stats_file), "-m", "aggregator.cli", "fetch", "-c", str(config)
    )
    checked(run_measured(command), "profiled aggregator fetch")
    text = io.StringIO()
    stats = pstats.Stats(str(stats_file), stream=text).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    shutil.rmtree(project)
    return text.getvalue()
