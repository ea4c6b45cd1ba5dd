"""A source renamed in config.toml takes over the stored feed of its old name: its entries keep
their ids and files (moved to its folder, the name in them changed), nothing is written twice,
hand deletions stand, and a rename cut short by a crash is finished by the next run."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aggregator.config import Config, load_config
from aggregator.frontmatter import read
from aggregator.pipeline import run_cycle
from aggregator.rename import Renamed, follow_renames
from aggregator.state import State
from aggregator.store import entry_folder
from tests.helpers import make_project, run_cli, snapshot, validate_atom

ATOM = "{http://www.w3.org/2005/Atom}"
OLD, NEW = "wire", "Daily Wire: 日报"


def _items(count: int, links: bool) -> str:
    """RSS whose items have a guid each, and a link each when `links`."""
    items = "".join(
        f"<item><title>Story {n}</title><guid isPermaLink='false'>story-{n}</guid>"
        + (f"<link>https://wire.example.com/{n}</link>" if links else "")
        + f"<pubDate>Mon, 0{n} Jun 2026 08:00:00 +0000</pubDate>"
        f"<description>Text of story {n}.</description></item>"
        for n in range(1, count + 1)
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Wire</title>"
        f"<link>https://wire.example.com/</link>{items}</channel></rss>"
    )


def _project(tmp_path: Path, links: bool = False, extra: str = "") -> Path:
    config = make_project(
        tmp_path,
        f'[site]\ntimezone = "UTC"\n\n[[feeds]]\nname = "{OLD}"\nurl = "items.xml"\n'
        f'tags = ["news"]\n{extra}',
    )
    (tmp_path / "items.xml").write_text(_items(3, links), encoding="utf-8")
    return config


def _renamed(config: Path, old: str = OLD, new: str = NEW) -> Config:
    config.write_text(
        config.read_text(encoding="utf-8").replace(f'name = "{old}"', f'name = "{new}"'),
        encoding="utf-8",
    )
    return load_config(config)


def _entries(feed: Path) -> dict[str, str]:
    """The published feed's entries: id => updated."""
    root = ET.parse(feed).getroot()
    return {
        e.findtext(f"{ATOM}id", ""): e.findtext(f"{ATOM}updated", "")
        for e in root.iter(f"{ATOM}entry")
    }


def _files(tmp_path: Path) -> dict[str, str]:
    """Every entry file under feeds/: path => text."""
    feeds = tmp_path / "feeds"
    return {p.relative_to(feeds).as_posix(): p.read_text("utf-8") for p in feeds.rglob("*.md")}


@pytest.mark.parametrize("links", [False, True], ids=["guid-only", "guid-and-link"])
def test_a_renamed_source_keeps_its_entries_ids_and_dates(tmp_path: Path, links: bool) -> None:
    config = _project(tmp_path, links)
    run_cycle(load_config(config), load_config(config).feeds)
    before = _files(tmp_path)
    published = _entries(tmp_path / "output" / "all.xml")
    assert len(before) == 3 and all(p.startswith(f"{OLD}/") for p in before)

    renamed = _renamed(config)
    report = run_cycle(renamed, renamed.feeds)

    assert report.renamed == [Renamed(OLD, NEW, 3)]
    assert [(o.new, o.updated) for o in report.outcomes] == [(0, 0)]
    folder = entry_folder(NEW)
    assert folder != OLD and not (tmp_path / "feeds" / OLD).exists()
    after = _files(tmp_path)
    assert sorted(p.split("/")[1] for p in after) == sorted(p.split("/")[1] for p in before)
    for path, text in after.items():
        assert path.startswith(f"{folder}/")
        meta, body = read(text)
        assert meta["categories"] == [NEW] and meta["tags"] == [NEW, "news"]
        last = body.rstrip("\n").splitlines()[-1]
        assert last.startswith(f"[{NEW}](https://wire.example.com/")
        assert text.replace(NEW, OLD) == before[f"{OLD}/{path.split('/')[1]}"]
    assert _entries(tmp_path / "output" / "all.xml") == published  # same ids, same updated
    tags = tmp_path / "output" / "tags"
    assert not (tags / f"{OLD}.xml").exists() and (tags / "news.xml").exists()
    validate_atom(sorted((tmp_path / "output").rglob("*.xml")))
    with State(renamed.state_path) as state:
        assert state.entry_counts() == {NEW: 3}
        assert [f.name for f in state.feeds()] == [NEW]

    quiet = snapshot(tmp_path / "feeds", tmp_path / "output")
    time.sleep(0.05)
    again = run_cycle(renamed, renamed.feeds, force=True)
    assert again.renamed == [] and [(o.new, o.updated) for o in again.outcomes] == [(0, 0)]
    assert snapshot(tmp_path / "feeds", tmp_path / "output") == quiet


def test_a_hand_deletion_stands_across_a_rename(tmp_path: Path) -> None:
    config = _project(tmp_path)
    run_cycle(load_config(config), load_config(config).feeds)
    victim = sorted((tmp_path / "feeds" / OLD).iterdir())[0]
    victim.unlink()
    assert run_cli("publish", "-c", str(config)).returncode == 0

    renamed = _renamed(config)
    report = run_cycle(renamed, renamed.feeds, force=True)

    assert report.renamed == [Renamed(OLD, NEW, 2)]
    names = sorted(p.name for p in (tmp_path / "feeds" / entry_folder(NEW)).iterdir())
    assert len(names) == 2 and victim.name not in names


def test_a_source_that_lists_another_s_article_renames_its_tag_there(tmp_path: Path) -> None:
    config = _project(tmp_path, links=True)
    (tmp_path / "copy.xml").write_text(_items(1, links=True), encoding="utf-8")
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[[feeds]]\nname = "echo"\nurl = "copy.xml"\ntags = ["copies"]\n',
        encoding="utf-8",
    )
    run_cycle(load_config(config), load_config(config).feeds)
    (owned,) = [t for p, t in _files(tmp_path).items() if "Story 1" in t]
    assert read(owned)[0]["tags"] == [OLD, "news", "echo", "copies"]

    renamed = _renamed(config, "echo", "Echo Chamber")
    report = run_cycle(renamed, renamed.feeds)

    assert report.renamed == [Renamed("echo", "Echo Chamber", 0)]
    (owned,) = [t for p, t in _files(tmp_path).items() if "Story 1" in t]
    assert read(owned)[0]["tags"] == [OLD, "news", "Echo Chamber", "copies"]
    assert read(owned)[0]["categories"] == [OLD]
    assert not (tmp_path / "output" / "tags" / "echo.xml").exists()


def test_a_rename_cut_short_is_finished_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _project(tmp_path)
    run_cycle(load_config(config), load_config(config).feeds)
    before = {p.split("/")[1] for p in _files(tmp_path)}
    renamed = _renamed(config)

    def crash(*_: object) -> None:
        raise OSError("power cut")

    with State(renamed.state_path) as state:
        monkeypatch.setattr(State, "rename_feed", crash)
        with pytest.raises(OSError, match="power cut"):
            follow_renames(renamed, state)
        monkeypatch.undo()
        assert [f.name for f in state.feeds()] == [OLD]  # nothing committed
        assert {p.split("/")[1] for p in _files(tmp_path)} == before  # each file in one place

    report = run_cycle(renamed, renamed.feeds)

    assert report.renamed == [Renamed(OLD, NEW, 3)]
    assert [(o.new, o.updated) for o in report.outcomes] == [(0, 0)]
    after = _files(tmp_path)
    assert {p.split("/")[1] for p in after} == before
    assert all(p.startswith(f"{entry_folder(NEW)}/") for p in after)


def test_publish_follows_a_rename_and_says_so(tmp_path: Path) -> None:
    config = _project(tmp_path)
    assert run_cli("fetch", "-c", str(config)).returncode == 0
    _renamed(config)

    proc = run_cli("publish", "-c", str(config))

    assert proc.returncode == 0, proc.stderr
    assert f"feed '{OLD}' is now '{NEW}' (same URL): 3 entries in" in proc.stdout + proc.stderr
    assert "0 deleted by hand" in proc.stdout + proc.stderr
    assert len(list((tmp_path / "feeds" / entry_folder(NEW)).iterdir())) == 3


def test_no_rename_when_the_url_does_not_tell_one_feed(tmp_path: Path) -> None:
    config = _project(tmp_path, extra='\n[[feeds]]\nname = "twin"\nurl = "items.xml"\n')
    run_cycle(load_config(config), load_config(config).feeds)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(f'name = "{OLD}"', 'name = "a"').replace('name = "twin"', 'name = "b"'),
        encoding="utf-8",
    )
    with State(load_config(config).state_path) as state:
        assert follow_renames(load_config(config), state) == []
        assert sorted(f.name for f in state.feeds()) == sorted([OLD, "twin"])


def test_an_unreadable_entry_file_stays_and_the_rest_move(tmp_path: Path) -> None:
    config = _project(tmp_path)
    run_cycle(load_config(config), load_config(config).feeds)
    broken = sorted((tmp_path / "feeds" / OLD).iterdir())[0]
    broken.write_bytes(b"---\ntitle: \xff\xfe\n---\n")

    with State(load_config(config).state_path) as state:
        renamed = follow_renames(_renamed(config), state)
        assert renamed == [Renamed(OLD, NEW, 2)]
        assert {e.source for e in state.owned_by(NEW)} == {NEW} and not state.owned_by(OLD)

    assert [p.name for p in (tmp_path / "feeds" / OLD).iterdir()] == [broken.name]
    assert len(list((tmp_path / "feeds" / entry_folder(NEW)).iterdir())) == 2


def test_a_rename_within_the_same_folder_rewrites_the_files_in_place(tmp_path: Path) -> None:
    config = _project(tmp_path)
    run_cycle(load_config(config), load_config(config).feeds)
    before = _files(tmp_path)
    assert entry_folder("Wire") == OLD

    renamed = _renamed(config, OLD, "Wire")
    report = run_cycle(renamed, renamed.feeds)

    assert report.renamed == [Renamed(OLD, "Wire", 3)]
    assert [(o.new, o.updated) for o in report.outcomes] == [(0, 0)]
    after = _files(tmp_path)
    assert after.keys() == before.keys()
    assert all(read(text)[0]["categories"] == ["Wire"] for text in after.values())
