"""The local feed server: synthetic feeds on 127.0.0.1 with ETags, Last-Modified, 304 and gzip.

Two families of feeds:
- `/feeds/<i>.xml`, i < --feeds: never change (cold and warm runs);
- `/churn/<i>.xml`, i < --churn: every fifth request to a feed adds one new entry to it,
  staggered over the feeds, so each daemon cycle has some real work (the soak).
`/_stats` answers JSON counters: requests per family, and responses by kind. Run it as
`python -m bench.server`; it prints `READY <base url>` once every static feed is generated.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.synth import ENTRIES, entry_date, feed_xml

CHURN_EVERY = 5
READY = "READY"
_PATH = re.compile(r"^/(feeds|churn)/(\d+)\.xml$")


@dataclass(frozen=True)
class Body:
    """One version of a feed as served: plain and gzip bytes plus its validators."""

    plain: bytes
    gzipped: bytes
    etag: str
    last_modified: str

    @classmethod
    def make(cls, data: bytes, index: int, version: int) -> Body:
        newest = entry_date(index, version + ENTRIES - 1)
        return cls(
            plain=data,
            gzipped=gzip.compress(data, compresslevel=6, mtime=0),
            etag=f'"{hashlib.sha1(data).hexdigest()[:20]}"',
            last_modified=format_datetime(newest, usegmt=True),
        )


class Catalog:
    """Every feed the server can answer, and counters of what it answered."""

    def __init__(self, feeds: int, churn: int) -> None:
        self.static = [Body.make(feed_xml(i), i, 0) for i in range(feeds)]
        self.churn = churn
        self.churn_hits: Counter[int] = Counter()
        self.churn_cache: dict[tuple[int, int], Body] = {}
        self.stats: Counter[str] = Counter()
        self.lock = threading.Lock()

    def body(self, family: str, index: int) -> Body | None:
        if family == "feeds":
            return self.static[index] if index < len(self.static) else None
        if index >= self.churn:
            return None
        with self.lock:
            hit = self.churn_hits[index]
            self.churn_hits[index] += 1
        version = (hit + index % CHURN_EVERY) // CHURN_EVERY
        key = (index, version)
        if key not in self.churn_cache:
            self.churn_cache.pop((index, version - 1), None)
            self.churn_cache[key] = Body.make(feed_xml(index, version), index, version)
        return self.churn_cache[key]

    def count(self, what: str) -> None:
        with self.lock:
            self.stats[what] += 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each response waits ~40 ms on delayed ACKs
    server: Server

    def do_GET(self) -> None:
        catalog = self.server.catalog
        if self.path == "/_stats":
            self._send(200, json.dumps(dict(catalog.stats)).encode(), "application/json")
            return
        match = _PATH.match(self.path.split("?", 1)[0])
        body = None
        if match:
            catalog.count(match.group(1))
            body = catalog.body(match.group(1), int(match.group(2)))
        if body is None:
            catalog.count("not_found")
            self._send(404, b"not found", "text/plain")
            return
        validators = {"ETag": body.etag, "Last-Modified": body.last_modified}
        if self._fresh(body):
            catalog.count("not_modified")
            self._send(304, b"", None, validators)
            return
        catalog.count("ok")
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            validators["Content-Encoding"] = "gzip"
            self._send(200, body.gzipped, "application/rss+xml", validators)
        else:
            self._send(200, body.plain, "application/rss+xml", validators)

    def _fresh(self, body: Body) -> bool:
        tags = self.headers.get("If-None-Match")
        if tags is not None:
            return body.etag in (t.strip() for t in tags.split(","))
        return self.headers.get("If-Modified-Since") == body.last_modified

    def _send(
        self,
        status: int,
        data: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.catalog = catalog


@dataclass
class FeedServer:
    """A running `python -m bench.server` subprocess."""

    process: subprocess.Popen[str]
    url: str

    def feed_url(self, index: int, family: str = "feeds") -> str:
        return f"{self.url}/{family}/{index}.xml"

    def stats(self) -> Counter[str]:
        import httpx

        return Counter(httpx.get(f"{self.url}/_stats", timeout=10).json())


@contextmanager
def feed_server(feeds: int, churn: int = 0) -> Iterator[FeedServer]:
    """Start the server in a subprocess (its own core's worth of GIL), stop it on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.server", "--feeds", str(feeds), "--churn", str(churn)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        if not line or line[0] != READY:
            raise RuntimeError(f"bench server did not start (exit code {process.poll()})")
        yield FeedServer(process, line[1])
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve synthetic feeds on 127.0.0.1.")
    parser.add_argument("--feeds", type=int, default=200, help="static feeds (/feeds/<i>.xml)")
    parser.add_argument("--churn", type=int, default=0, help="changing feeds (/churn/<i>.xml)")
    args = parser.parse_args()
    server = Server(Catalog(args.feeds, args.churn))
    print(f"{READY} http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
