"""WebSub: with `[site] hub`, every feed links to the hub, and a publish that changed feeds pings
it with their URLs (a local hub stub here); a failing hub is reported, never fatal."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs

from aggregator.publish import publish
from aggregator.state import State
from tests.feedcheck import ATOM, check_atom
from tests.helpers import http_server, make_project, run_cli
from tests.seed import add_entry, edit_entry, project

BASE = "http://127.0.0.1:8080/"


class HubStub:
    """Records the pings it gets and answers them with `status`."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.pings: list[dict[str, list[str]]] = []

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        body = handler.rfile.read(length).decode("ascii")
        if handler.command == "POST":
            self.pings.append(parse_qs(body))
        handler.send_response(self.status if handler.command == "POST" else 405)
        handler.send_header("Content-Length", "0")
        handler.end_headers()


def test_publish_that_changed_feeds_pings_the_hub(tmp_path: Path) -> None:
    hub = HubStub()
    with http_server({"/hub": hub}) as origin:
        config = project(tmp_path, BASE, f'hub = "{origin}/hub"\nformats = ["atom", "json"]\n')
        with State(config.state_path) as state:
            entry = add_entry(config, state, "e", tags=("news",))
            add_entry(config, state, "other", source="other")
            first = publish(config, state)
            assert first.problems == []
            assert len(hub.pings) == 1
            assert hub.pings[0]["hub.mode"] == ["publish"]
            assert sorted(hub.pings[0]["hub.url"]) == sorted(first.changed_feeds)
            assert BASE + "tags/news.json" in hub.pings[0]["hub.url"]

            publish(config, state)
            assert len(hub.pings) == 1, "a publish that changed nothing pings nobody"

            edit_entry(config, state, entry, "New words.", entry.date + 60)
            publish(config, state)
    touched = ["all.xml", "all.json", "tags/src.xml", "tags/src.json", "tags/news.xml"]
    touched.append("tags/news.json")
    assert sorted(hub.pings[1]["hub.url"]) == sorted(BASE + path for path in touched)
    output = config.site.output_dir
    root = ET.parse(output / "all.xml").getroot()
    hubs = [x.get("href") for x in root.findall(f"{ATOM}link") if x.get("rel") == "hub"]
    assert hubs == [f"{origin}/hub"]
    assert check_atom((output / "all.xml").read_bytes(), BASE + "all.xml") == []
    feed = json.loads((output / "all.json").read_bytes())
    assert feed["hubs"] == [{"type": "WebSub", "url": f"{origin}/hub"}]


def test_failing_hub_is_reported_and_publishing_goes_on(tmp_path: Path) -> None:
    hub = HubStub(status=500)
    with http_server({"/hub": hub}) as origin:
        config = project(tmp_path, BASE, f'hub = "{origin}/hub"\n')
        with State(config.state_path) as state:
            add_entry(config, state, "e")
        proc = run_cli("publish", "-c", str(config.path))
    assert proc.returncode == 0, proc.stderr
    assert f"websub hub {origin}/hub: answered HTTP 500" in proc.stderr
    assert len(hub.pings) == 1
    assert (config.site.output_dir / "all.xml").exists()


def test_a_failing_hub_is_reported_by_fetch_too(tmp_path: Path) -> None:
    """Not only by `aggregator publish`: the publish at the end of a fetch (or of a daemon
    cycle, which logs the same problems) says so too."""
    hub = HubStub(status=500)
    with http_server({"/hub": hub}) as origin:
        config = make_project(
            tmp_path,
            f'[site]\nbase_url = "{BASE}"\nhub = "{origin}/hub"\n'
            '[[feeds]]\nname = "s"\nurl = "samples/science-atom.xml"\n',
        )
        proc = run_cli("fetch", "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    assert f"websub hub {origin}/hub: answered HTTP 500" in proc.stderr
    assert len(hub.pings) == 1


def test_unreachable_hub_is_reported(tmp_path: Path) -> None:
    with http_server({}) as origin:
        dead = f"{origin}/hub"
    config = project(tmp_path, BASE, f'hub = "{dead}"\n')
    with State(config.state_path) as state:
        add_entry(config, state, "e")
        result = publish(config, state)
    assert len(result.problems) == 1 and result.problems[0].startswith(f"websub hub {dead}: ")
    assert result.written
