"""`aggregator serve`: output/ over HTTP on 127.0.0.1, the way a static host serves it: the
right content types, ETag and Last-Modified with 304 answers, gzip when the client accepts it,
and nothing outside output/ (no `..`, no hidden or temporary files)."""

from __future__ import annotations

import gzip
import hashlib
import signal
import sys
import threading
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from urllib.parse import unquote, urlsplit

from aggregator import __version__, defaults
from aggregator.config import Config
from aggregator.errors import UsageError

CONTENT_TYPES = {
    ".xml": "application/atom+xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
}
INDEX = "index.html"
GZIP_MIN_BYTES = 256  # smaller bodies are sent as they are
LOCAL_HOSTS = ("127.0.0.1", "localhost")


class _Body:
    """One file's bytes as last read, its validators and its gzip form."""

    def __init__(self, data: bytes, mtime: float) -> None:
        self.data = data
        self.etag = f'"{hashlib.sha256(data).hexdigest()[:20]}"'
        self.gzip_etag = self.etag[:-1] + '-gzip"'
        self.mtime = int(mtime)
        self.last_modified = formatdate(self.mtime, usegmt=True)
        self.compressed: bytes | None = None

    def gzipped(self) -> bytes:
        if self.compressed is None:
            self.compressed = gzip.compress(self.data, mtime=0)
        return self.compressed


class _Files:
    """Files under a root, read again only when their size or mtime change."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.cache: dict[Path, tuple[tuple[int, int], _Body]] = {}
        self.lock = threading.Lock()

    def resolve(self, url_path: str) -> Path | None:
        """The file a URL path names, or None when it is outside the root, hidden or absent."""
        rel = unquote(url_path)
        if rel.endswith("/"):
            rel += INDEX
        parts = [p for p in rel.split("/") if p]
        if not parts or any(p.startswith(".") or "\\" in p or "\0" in p for p in parts):
            return None
        target = self.root.joinpath(*parts).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        return target

    def body(self, path: Path) -> _Body:
        stat = path.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        with self.lock:
            cached = self.cache.get(path)
        if cached and cached[0] == key:
            return cached[1]
        body = _Body(path.read_bytes(), stat.st_mtime)
        with self.lock:
            self.cache[path] = (key, body)
        return body


def accepts_gzip(header: str | None) -> bool:
    for item in (header or "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            quality = params.strip().lower().removeprefix("q=")
            try:
                return not params or float(quality) > 0
            except ValueError:
                return False
    return False


def make_handler(files: _Files) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"aggregator/{__version__}"

        def do_GET(self) -> None:
            self.respond(send_body=True)

        def do_HEAD(self) -> None:
            self.respond(send_body=False)

        def respond(self, send_body: bool) -> None:
            target = files.resolve(urlsplit(self.path).path)
            if target is None:
                self.send_error(404)
                return
            body = files.body(target)
            compress = len(body.data) >= GZIP_MIN_BYTES and accepts_gzip(
                self.headers.get("Accept-Encoding")
            )
            etag = body.gzip_etag if compress else body.etag
            if self.not_modified(body):
                self.send_response(304)
                self.validators(etag, body)
                self.end_headers()
                return
            data = body.gzipped() if compress else body.data
            self.send_response(200)
            self.send_header(
                "Content-Type", CONTENT_TYPES.get(target.suffix, "application/octet-stream")
            )
            self.send_header("Content-Length", str(len(data)))
            if compress:
                self.send_header("Content-Encoding", "gzip")
            self.validators(etag, body)
            self.end_headers()
            if send_body:
                self.wfile.write(data)

        def not_modified(self, body: _Body) -> bool:
            match = self.headers.get("If-None-Match")
            if match is not None:
                tags = {t.strip().removeprefix("W/") for t in match.split(",")}
                return bool(tags & {"*", body.etag, body.gzip_etag})
            since = self.headers.get("If-Modified-Since")
            if since is None:
                return False
            try:
                return body.mtime <= parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                return False

        def validators(self, etag: str, body: _Body) -> None:
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", body.last_modified)
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Vary", "Accept-Encoding")

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def make_server(root: Path, port: int, host: str = defaults.SERVE_HOST) -> ThreadingHTTPServer:
    """An HTTP server for the files under `root` (port 0 picks a free one)."""
    server = ThreadingHTTPServer((host, port), make_handler(_Files(root)))
    server.daemon_threads = True
    return server


def default_port(base_url: str) -> int:
    """The port of `[site] base_url` when it names this machine, else SERVE_PORT."""
    parts = urlsplit(base_url)
    if parts.hostname in LOCAL_HOSTS and parts.port:
        return parts.port
    return defaults.SERVE_PORT


def local_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/"


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(config: Config, port: int | None) -> int:
    """Serve output/ until interrupted (Ctrl-C or SIGTERM)."""
    root = config.site.output_dir
    root.mkdir(parents=True, exist_ok=True)
    port = default_port(config.site.base_url) if port is None else port
    try:
        server = make_server(root, port)
    except OSError as exc:
        raise UsageError(
            f"cannot serve on {defaults.SERVE_HOST}:{port}: {exc.strerror or exc} "
            "(choose another --port)"
        ) from None
    print(f"serving {root} at {local_url(server)}", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
