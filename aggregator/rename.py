"""A source renamed in config.toml: a configured name that the state has no feed of, with the
URL of a stored feed whose name is no longer configured, takes that feed over. Its state, the
identities and hand deletions of its entries, its folder of feeds/ and its name in their files
(category, tag, source line) follow, so its articles keep their files and ids instead of coming
again under the new name."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from aggregator.atomic import remove_many, write_many
from aggregator.config import Config
from aggregator.frontmatter import with_categories, with_tags
from aggregator.state import State, StoredEntry
from aggregator.store import entry_folder, entry_path, merged_tags, text_hash


@dataclass(frozen=True)
class Renamed:
    """A source that took over the stored feed of its old name."""

    old: str
    new: str
    entries: int  # its own entries whose files are now in its folder

    def __str__(self) -> str:
        return (
            f"feed {self.old!r} is now {self.new!r} (same URL): {self.entries} entries in"
            f" {entry_folder(self.new)}/"
        )


def follow_renames(config: Config, state: State) -> list[Renamed]:
    """Rename each stored feed that a configured feed of another name took the place of."""
    return [_rename(state, config.site.feeds_dir, old, new) for old, new in _renames(config, state)]


def _renames(config: Config, state: State) -> list[tuple[str, str]]:
    """(old, new) for each configured name the state has no feed of whose URL is that of
    exactly one stored feed whose name is not configured, and of no other new name."""
    stored = {name: url for name, url, _, _ in state.feed_sources()}
    configured = {source.name for source in config.feeds}
    gone: dict[str, list[str]] = {}
    for name, url in stored.items():
        if name not in configured and url:
            gone.setdefault(url, []).append(name)
    new: dict[str, list[str]] = {}
    for source in config.feeds:
        if source.name not in stored:
            new.setdefault(source.url, []).append(source.name)
    return [
        (olds[0], names[0])
        for url, names in new.items()
        if len(names) == 1 and len(olds := gone.get(url, [])) == 1
    ]


def _rename(state: State, feeds_dir: Path, old: str, new: str) -> Renamed:
    """Move the old name's entries to the new one, files first (each durable in its new place
    before the old one goes), then the index in one transaction. A crash before the commit
    leaves the old name in the state, and the next run does it again from the files where they
    are."""
    with state.transaction():
        owned = state.owned_by(old)
        moved = [(e, *_moved(state, feeds_dir, e, old, new)) for e in owned]
        moved += [(e, *_retagged(state, feeds_dir, e, old, new)) for e in state.listed_by(old)]
        write_many((feeds_dir / after.path, text.encode()) for _, after, text in moved if text)
        remove_many(feeds_dir / e.path for e, to, text in moved if text and e.path != to.path)
        state.rename_feed(old, new)
        cached = state.cached_html(before.id for before, _, _ in moved)
        for before, after, text in moved:
            state.move_entry(after)
            html = cached.get(after.id)
            if html is not None and html[0] == before.hash:  # the feed HTML does not name it
                state.save_html([(after.id, after.hash, html[1])])
            if text is not None:
                found = os.stat(feeds_dir / after.path)
                state.save_entry_files([(after.id, after.hash, found.st_size, found.st_mtime_ns)])
        for folder in {entry_folder(old), entry_folder(new)}:
            state.save_folder_digest(folder, None)  # the next reconcile looks at them again
    with contextlib.suppress(OSError):  # not empty (files of its own), or gone already
        (feeds_dir / entry_folder(old)).rmdir()
    mine = [to for _, to, _ in moved[: len(owned)] if to.path == entry_path(new, to.id)]
    return Renamed(old, new, len(mine))


def _moved(
    state: State, feeds_dir: Path, entry: StoredEntry, old: str, new: str
) -> tuple[StoredEntry, str | None]:
    """An entry of the old name as the new one's, and its file's new text. None when its file
    is in neither place (deleted by hand, which the next reconcile notices), or cannot be read
    (it stays where it is)."""
    tags = _tags(state, entry, old, new)
    moved = replace(entry, source=new, path=entry_path(new, entry.id), tags=tags)
    try:
        text = _text(feeds_dir, entry.path, moved.path)
    except (OSError, UnicodeDecodeError):
        return replace(moved, path=entry.path), None
    if text is None:
        return moved, None
    if with_categories(text, (old,)) == text:  # the categories the store wrote
        text = with_categories(text, (new,))
    text = _source_line(with_tags(text, tags), entry.link, old, new)
    return replace(moved, hash=text_hash(text)), text


def _retagged(
    state: State, feeds_dir: Path, entry: StoredEntry, old: str, new: str
) -> tuple[StoredEntry, str | None]:
    """An entry another source stored, which the old name listed too: the tag the old name
    gave it renamed."""
    tags = _tags(state, entry, old, new)
    try:
        text = _text(feeds_dir, entry.path, entry.path)
    except (OSError, UnicodeDecodeError):
        text = None
    if text is None or tags == entry.tags:
        return replace(entry, tags=tags), None
    text = with_tags(text, tags)
    return replace(entry, tags=tags, hash=text_hash(text)), text


def _tags(state: State, entry: StoredEntry, old: str, new: str) -> tuple[str, ...]:
    """The entry's tags as the store merges them, with the old name's as the new name's."""
    by_source = {
        new if source == old else source: tuple(new if tag == old else tag for tag in tags)
        for source, tags in state.source_tags(entry.id).items()
    }
    owner = new if entry.source == old else entry.source
    own = tuple(new if tag == old else tag for tag in entry.tags)
    return merged_tags(owner, by_source.get(owner, own), by_source)


def _text(feeds_dir: Path, path: str, moved: str) -> str | None:
    """The text of an entry file, where it is (a rename cut short may have moved it already)."""
    for candidate in (path, moved):
        try:
            return (feeds_dir / candidate).read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
    return None


def _source_line(text: str, link: str, old: str, new: str) -> str:
    """The text with its closing source line naming the new name, when it names the old one."""
    from aggregator.convert import source_link  # the converter's imports: only for a rename

    if not link:
        return text
    line = f"\n{source_link(old, link)}\n"
    if not text.endswith(line):
        return text
    return f"{text[: -len(line)]}\n{source_link(new, link)}\n"
