"""Shared test helpers: paths to shared fixtures, a project folder, a local HTTP server, Atom
validation."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GOLDEN = SHARED / "golden" / "qq-deepseek"
ATOM_RNC = SHARED / "atom" / "atom.rnc"
CORPORA = SHARED / "corpora"


def make_project(tmp: Path, config_text: str | None = None) -> Path:
    """A project folder with the shipped config and samples (or `config_text`); its config."""
    shutil.copytree(REPO / "samples", tmp / "samples")
    config = tmp / "config.toml"
    config.write_text(
        config_text
        if config_text is not None
        else (REPO / "config.toml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    return config


CLI = Path(sys.executable).with_name("aggregator")


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real console script in a subprocess."""
    return subprocess.run(
        [str(CLI), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def start_cli(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """The real console script started in the background (e.g. the daemon), stderr to `log`."""
    with log.open("wb") as sink:
        return subprocess.Popen([str(CLI), *args], stdout=sink, stderr=sink)


def validate_atom(files: list[Path]) -> None:
    """Fail with jing's messages unless every file validates against RFC 4287's schema."""
    assert files, "no files to validate"
    exe = Path(sys.executable).with_name("pyjing")
    proc = subprocess.run(
        [str(exe), "-c", str(ATOM_RNC), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def snapshot(*folders: Path) -> dict[Path, tuple[bytes, int]]:
    """Every file's bytes and mtime (ns) under the folders."""
    out: dict[Path, tuple[bytes, int]] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out[path] = (path.read_bytes(), path.stat().st_mtime_ns)
    return out


Route = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def http_server(routes: dict[str, Route], host: str = "127.0.0.1") -> Iterator[str]:
    """A real HTTP server on `host` (a loopback address) in a thread; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = routes.get(self.path.split("?")[0])
            if route is None:
                self.send_error(404)
                return
            route(self)

        do_POST = do_GET  # a route tells the two apart by `handler.command`

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def serve_bytes(
    body: bytes,
    content_type: str = "application/rss+xml",
    etag: str | None = None,
    last_modified: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> Route:
    """A route answering `body` (with `headers`), and 304 when the client sends the matching
    ETag or Last-Modified."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        validators = [("ETag", etag), ("Last-Modified", last_modified)]
        if (etag and handler.headers.get("If-None-Match") == etag) or (
            last_modified and handler.headers.get("If-Modified-Since") == last_modified
        ):
            handler.send_response(304)
            for name, value in validators:
                if value:
                    handler.send_header(name, value)
            handler.end_headers()
            return
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in [*validators, *headers]:
            if value:
                handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return route


def rss(title: str, items: Sequence[tuple[str, str]], link: str = "https://example.org/") -> bytes:
    """An RSS 2.0 document with one item per (guid, title), each with a link and a date."""
    body = "".join(
        f"<item><guid>{guid}</guid><title>{escape(text)}</title>"
        f"<link>{link}{guid}</link><pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate>"
        f"<description>{escape(text)}</description></item>"
        for guid, text in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>{link}</link>{body}</channel></rss>"
    ).encode()
