"""Edit config.toml the way a person would (tomlkit): add or remove [[feeds]] tables and keep
every comment, the order and the layout of the rest. The result is validated before it is
written, atomically, so a failed edit leaves the file as it was; a symbolic link stays one."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from tomlkit.items import AoT, Array, Comment, InlineTable, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from aggregator.atomic import edit_atomic
from aggregator.config import parse_config
from aggregator.errors import UsageError


@dataclass(frozen=True)
class NewFeed:
    """The keys `add` and `import-opml` write for a feed."""

    name: str
    url: str
    tags: tuple[str, ...] = ()
    lang: str | None = None


def _load(path: Path) -> tuple[TOMLDocument, str]:
    """The file as a document, ending with a newline (so that an appended table starts on a
    line of its own), and the file's line ending: that of its first line."""
    text = path.read_bytes().decode("utf-8")
    newline = "\r\n" if text.partition("\n")[0].endswith("\r") else "\n"
    if text and not text.endswith("\n"):
        text += newline
    return tomlkit.parse(text), newline


def _save(path: Path, document: TOMLDocument, newline: str) -> None:
    """Validate and write the document, every line ending in `newline`."""
    text = tomlkit.dumps(document)
    if newline != "\n":
        text = text.replace("\r\n", "\n").replace("\n", newline)
    parse_config(tomllib.loads(text), path, text)
    edit_atomic(path, text.encode("utf-8"))


def add_feeds(path: Path, feeds: Sequence[NewFeed]) -> None:
    """Append one [[feeds]] table per feed, each after a blank line; or, to feeds written as an
    array of inline tables, one more inline table each."""
    document, newline = _load(path)
    if "feeds" not in document:
        document.append("feeds", tomlkit.aot())
    tables = document["feeds"]
    assert isinstance(tables, AoT | Array)  # the config check let nothing else through
    for feed in feeds:
        table = tomlkit.table() if isinstance(tables, AoT) else tomlkit.inline_table()
        if isinstance(table, Table):
            table.trivia.indent = "\n"
        table["name"] = feed.name
        table["url"] = feed.url
        if feed.lang:
            table["lang"] = feed.lang
        if feed.tags:
            table["tags"] = list(feed.tags)
        tables.append(table)
    _save(path, document, newline)


def remove_feed(path: Path, name: str) -> None:
    """Delete the [[feeds]] table (or inline table) named `name`. Comments inside it go with it;
    a comment block set off by a blank line after its last key is about what follows, and
    stays."""
    document, newline = _load(path)
    tables = document.get("feeds")
    index = next(
        (
            i
            for i, t in enumerate(tables or [])
            if isinstance(t, Table | InlineTable) and t.get("name") == name
        ),
        None,
    )
    if tables is None or index is None:
        raise UsageError(f"no feed named {name!r} in {path}")
    trailing = _trailing_comments(tables[index]) if isinstance(tables[index], Table) else []
    if trailing:
        keeper = tables[index - 1] if index > 0 else _table_before(document, "feeds")
        target = keeper.value if keeper is not None else document
        if target.body and isinstance(target.body[-1][1], Whitespace):
            trailing = trailing[1:]
        for item in trailing:
            target.add(item)
    del tables[index]
    if not tables:
        del document["feeds"]
    _save(path, document, newline)


def _trailing_comments(table: Table) -> list[Comment | Whitespace]:
    body = table.value.body
    last_key = max((i for i, (key, _) in enumerate(body) if key is not None), default=-1)
    tail = [item for _, item in body[last_key + 1 :] if isinstance(item, Comment | Whitespace)]
    starts_apart = bool(tail) and isinstance(tail[0], Whitespace) and "\n" in tail[0].s
    return tail if starts_apart and any(isinstance(i, Comment) for i in tail) else []


def _table_before(document: TOMLDocument, key: str) -> Table | None:
    previous: Table | None = None
    for name, item in document.body:
        if name is not None and name.key == key:
            return previous
        if isinstance(item, Table):
            previous = item
    return previous
