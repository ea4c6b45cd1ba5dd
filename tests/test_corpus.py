"""The whole feedparser corpus (2,107 real test feeds, 745 of them sanitizer attacks) through
`aggregator fetch`: no crash, every rejected feed named with its reason, every entry file read
back in FORMAT.md's layout, nothing executable in feeds/ or output/, and a Hugo build of the
result without error or warning."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from aggregator.state import State
from tests.entrycheck import HUGO_SITE, check_entry_file, hugo_build, hugo_calls, unsafe_in
from tests.helpers import CORPORA, run_cli

CORPUS = CORPORA / "feedparser"


@dataclass(frozen=True)
class Run:
    root: Path
    names: dict[str, Path]
    returncode: int
    stderr: str

    @property
    def feeds(self) -> Path:
        return self.root / "feeds"

    @property
    def output(self) -> Path:
        return self.root / "output"


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "LICENSE")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("corpus")
    names = {
        re.sub(r"[^a-z0-9]+", "-", str(p.relative_to(CORPUS).with_suffix("")).lower()): p
        for p in corpus_files()
    }
    tables = "".join(f'\n[[feeds]]\nname = "{n}"\nurl = "{p}"\n' for n, p in names.items())
    (root / "config.toml").write_text('[site]\ntimezone = "UTC"\n' + tables, encoding="utf-8")
    proc = run_cli("fetch", "-c", str(root / "config.toml"), timeout=600)
    return Run(root, names, proc.returncode, proc.stderr)


def test_every_feed_is_taken_or_named_with_its_reason(run: Run) -> None:
    assert len(run.names) == len(corpus_files()) > 2000
    assert "Traceback" not in run.stderr
    assert run.returncode == 1
    with State(run.root / "aggregator-state.sqlite") as state:
        errors = {name: state.feed(name).last_error for name in run.names}
    failed = {name for name, error in errors.items() if error}
    for name in failed:
        assert f"{name}: {errors[name]}" in run.stderr.splitlines()
    stored = {path.parent.name for path in run.feeds.rglob("*.md")}
    assert len(stored) > 1000 and not stored & failed
    assert {"wellformed-sanitize-entry-content-script", "json-example"} <= stored


def test_every_entry_file_reads_back_safe_and_in_layout(run: Run) -> None:
    files = sorted(run.feeds.rglob("*.md"))
    assert len(files) > 1000
    for path in files:
        check_entry_file(path)
        assert hugo_calls(path.read_text(encoding="utf-8")) == [], path


def published_texts(path: Path) -> list[str]:
    """The strings a reader of a published file renders: element text and attributes of XML,
    the string values of JSON, the markup of an HTML page."""
    if path.suffix in (".xml", ".opml"):
        root = ET.parse(path).getroot()
        return [t for e in root.iter() for t in (e.text, e.tail, *e.attrib.values()) if t]
    if path.suffix == ".json":
        found: list[str] = []

        def walk(value: object) -> None:
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(json.loads(path.read_text(encoding="utf-8")))
        return found
    return [path.read_text(encoding="utf-8")]


def test_nothing_executable_is_published(run: Run) -> None:
    published = [p for p in run.output.rglob("*") if p.is_file() and p.suffix != ".md"]
    assert len(published) > 1000
    for path in published:
        for text in published_texts(path):
            assert unsafe_in(text) == [], (path, text[:200])


def test_hugo_builds_every_corpus_entry(run: Run) -> None:
    site = run.root / "examples" / "hugo-site"
    shutil.copytree(HUGO_SITE, site)
    hugo_build(site, "UTC", "--disableKinds", "taxonomy,term")
    pages = list((site / "public" / "posts").glob("*/*/index.html"))
    assert len(pages) == len(list(run.feeds.rglob("*.md")))
    for page in pages:
        markup = page.read_text(encoding="utf-8")
        assert "raw HTML omitted" not in markup and unsafe_in(markup) == [], page
