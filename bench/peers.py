"""What we are compared with, each run in its own process by `bench.run`:

- `reader`: lemon24/reader's `update_feeds(workers=4)` (it parses and stores, no more);
- `floor`: plain concurrent httpx GETs of every feed plus an lxml parse of each body, about
  the least any aggregator must do.

`python -m bench.peers {reader,floor} {cold,warm} WORKDIR URLS_FILE` times the work itself (not
the interpreter's start or the setup) and prints one JSON object: seconds, entries, failures.
A warm run reuses the cold run's WORKDIR (reader's database, the floor's validators).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
from lxml import etree

READER_WORKERS = 4
FLOOR_CONCURRENCY = 16
READER_DB = "reader.sqlite"
FLOOR_VALIDATORS = "floor-etags.json"


def run_reader(workdir: Path, urls: list[str], warm: bool) -> dict[str, Any]:
    from reader import make_reader

    reader = make_reader(str(workdir / READER_DB))
    if not warm:
        for url in urls:
            reader.add_feed(url)
    started = time.perf_counter()
    reader.update_feeds(scheduled=False, workers=READER_WORKERS)
    seconds = time.perf_counter() - started
    failures = sum(1 for feed in reader.get_feeds() if feed.last_exception)
    entries = reader.get_entry_counts().total
    reader.close()
    return {"seconds": seconds, "entries": entries, "failures": failures}


async def _floor_fetch(urls: list[str], validators: dict[str, str]) -> dict[str, Any]:
    semaphore = asyncio.Semaphore(FLOOR_CONCURRENCY)
    limits = httpx.Limits(max_connections=FLOOR_CONCURRENCY)
    entries = failures = 0
    etags: dict[str, str] = {}
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(url: str) -> None:
            nonlocal entries, failures
            headers = {"If-None-Match": validators[url]} if url in validators else {}
            async with semaphore:
                response = await client.get(url, headers=headers)
            if response.status_code == 304:
                return
            if response.status_code != 200:
                failures += 1
                return
            etags[url] = response.headers.get("etag", "")
            entries += sum(1 for _ in etree.fromstring(response.content).iter("item"))

        await asyncio.gather(*(one(url) for url in urls))
    return {"entries": entries, "failures": failures, "etags": etags}


def run_floor(workdir: Path, urls: list[str], warm: bool) -> dict[str, Any]:
    saved = workdir / FLOOR_VALIDATORS
    validators = json.loads(saved.read_text()) if warm else {}
    started = time.perf_counter()
    result = asyncio.run(_floor_fetch(urls, validators))
    seconds = time.perf_counter() - started
    if not warm:
        saved.write_text(json.dumps(result["etags"]))
    return {"seconds": seconds, "entries": result["entries"], "failures": result["failures"]}


PEERS = {"reader": run_reader, "floor": run_floor}


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one peer workload and print its figures.")
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("mode", choices=["cold", "warm"])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("urls", type=Path, help="file with one feed URL a line")
    args = parser.parse_args()
    urls = args.urls.read_text().split()
    print(json.dumps(PEERS[args.peer](args.workdir, urls, args.mode == "warm")))


if __name__ == "__main__":
    main()
