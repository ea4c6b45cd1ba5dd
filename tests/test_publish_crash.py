"""A `kill -9` at any moment of publishing leaves every published file whole (the old bytes or
the new), and the next `aggregator publish` leaves no temp file and a consistent output/."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from aggregator.atomic import TEMP_PREFIX
from aggregator.publish import publish
from aggregator.state import State
from tests.feedcheck import ATOM, check_atom
from tests.helpers import REPO, run_cli, snapshot
from tests.seed import add_entries, project

BASE = "http://127.0.0.1:8080/"
KILLS = 6
# Publishes in a loop, changing ten entries before each round; prints the round number.
LOOP = """
import random, sys, time
from aggregator.config import load_config
from aggregator.publish import publish
from aggregator.state import State
from tests.seed import edit_entry

config = load_config(sys.argv[1])
with State(config.state_path) as state:
    ids = [e.id for e in state.all_entries()]
    for round in range(1, 10**6):
        for key in random.sample(ids, 10):
            entry = state.entry(key)
            edit_entry(config, state, entry, f"Round {round}. " * 200, time.time())
        publish(config, state)
        print(round, flush=True)
"""


def assert_whole(output: Path) -> None:
    """Every published file (temp files aside) parses completely."""
    for path in output.rglob("*"):
        if not path.is_file() or path.name.startswith(TEMP_PREFIX):
            continue
        data = path.read_bytes()
        if path.suffix == ".json":
            json.loads(data)
        elif path.suffix == ".html":
            assert data.rstrip().endswith(b"</html>"), path
        else:
            ET.fromstring(data)


def test_kill_during_publishing_leaves_whole_feeds(tmp_path: Path) -> None:
    config = project(tmp_path, BASE, 'formats = ["atom", "rss", "json"]\n')
    with State(config.state_path) as state:
        tags = [f"t{n}" for n in range(15)]
        add_entries(config, state, 120, 6, tags, spacing=1, body="Body {n}. " * 200)
        publish(config, state)
    output = config.site.output_dir
    rng = random.Random(20261128)
    for _ in range(KILLS):
        loop = subprocess.Popen(
            [sys.executable, "-c", LOOP, str(config.path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert loop.stdout is not None
        assert loop.stdout.readline().strip() == "1", loop.stderr.read() if loop.stderr else ""
        time.sleep(rng.uniform(0.0, 0.4))
        loop.send_signal(signal.SIGKILL)
        loop.wait()
        assert_whole(output)

    proc = run_cli("publish", "-c", str(config.path))
    assert proc.returncode == 0, proc.stderr
    assert list(output.rglob(f"{TEMP_PREFIX}*")) == []
    for path in output.rglob("*.xml"):
        assert check_atom(path.read_bytes(), BASE + path.relative_to(output).as_posix()) == []
    with State(config.state_path) as state:
        newest = [e.id for e in state.newest(None, config.site.entries_per_feed)]
        all_feed = ET.parse(output / "all.xml").getroot().findall(f"{ATOM}entry")
        assert len(all_feed) == len(newest)
        settled = snapshot(output)
        assert publish(config, state).written == []
    assert snapshot(output) == settled
