"""Write and read the entry files' YAML front matter in the exact layout of FORMAT.md."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# characters YAML takes as they are inside double quotes (no quote, backslash, line breaks
# or byte-order mark): most values need no escape at all
_PLAIN = re.compile(
    r"[\x20\x21\x23-\x5b\x5d-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*"
)
_TAGS_BLOCK = re.compile(r"^tags:(?: \[\])?\n(?:  - .*\n)*", re.MULTILINE)
_CATEGORIES_BLOCK = re.compile(r"^categories:(?: \[\])?\n(?:  - .*\n)*", re.MULTILINE)
_TITLE_LINE = re.compile(r"^title: .*$", re.MULTILINE)
_DATE_LINE = re.compile(r'^date: "(\d{4}-\d{2}-\d{2})', re.MULTILINE)

_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\0": "\\0",
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
    "\x85": "\\N",
    "\u2028": "\\L",
    "\u2029": "\\P",
    "\ufeff": "\\uFEFF",
}


def _printable(code: int) -> bool:
    return (
        code in (0x9, 0xA, 0xD, 0x85)
        or 0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def quote(value: str) -> str:
    """A YAML double-quoted scalar that reads back as exactly `value`."""
    if _PLAIN.fullmatch(value):
        return f'"{value}"'
    out = ['"']
    for char in value:
        escaped = _ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif _printable(ord(char)):
            out.append(char)
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02X}")
        elif 0xD800 <= ord(char) <= 0xDFFF:
            continue  # a lone surrogate cannot be written as UTF-8 at all
        else:
            out.append(f"\\u{ord(char):04X}")
    out.append('"')
    return "".join(out)


FrontValue = str | bool | Sequence[str]


@dataclass(frozen=True)
class FrontMatter:
    """The keys of one entry in FORMAT.md's order."""

    title: str
    date: str
    summary: str
    categories: tuple[str, ...]
    lang: str
    tags: tuple[str, ...]
    thumbnail: str
    comments: bool
    authorbox: bool
    pager: bool
    toc: bool
    mathjax: bool
    sidebar: str
    widgets: tuple[str, ...]

    def items(self) -> list[tuple[str, FrontValue]]:
        return [
            ("title", self.title),
            ("date", self.date),
            ("summary", self.summary),
            ("categories", self.categories),
            ("lang", (self.lang,)),
            ("translations", (self.lang,)),
            ("tags", self.tags),
            ("menu", ""),
            ("thumbnail", self.thumbnail),
            ("lead", ""),
            ("comments", self.comments),
            ("authorbox", self.authorbox),
            ("pager", self.pager),
            ("toc", self.toc),
            ("mathjax", self.mathjax),
            ("sidebar", self.sidebar),
            ("widgets", self.widgets),
        ]


def render(front: FrontMatter) -> str:
    """The front matter block, from the opening `---` to the blank line after the closing one."""
    lines = ["---"]
    for key, value in front.items():
        if isinstance(value, bool):
            lines.append(f"{key}: {'true' if value else 'false'}")
        elif isinstance(value, str):
            lines.append(f"{key}: {quote(value)}")
        else:
            lines.extend(_list(key, value))
    lines.append("---")
    return "\n".join(lines) + "\n\n"


def with_tags(text: str, tags: Sequence[str]) -> str:
    """An entry file's text with the tags list of its front matter replaced."""
    return _with_list(text, _TAGS_BLOCK, "tags", tags)


def with_categories(text: str, categories: Sequence[str]) -> str:
    """An entry file's text with the categories list of its front matter replaced."""
    return _with_list(text, _CATEGORIES_BLOCK, "categories", categories)


def _with_list(text: str, block: re.Pattern[str], key: str, values: Sequence[str]) -> str:
    lines = "\n".join(_list(key, values)) + "\n"
    return block.sub(lambda _: lines, text, count=1)


def with_title(text: str, title: str) -> str:
    """An entry file's text with the title of its front matter replaced."""
    return _TITLE_LINE.sub(lambda _: f"title: {quote(title)}", text, count=1)


def front_day(text: str) -> str:
    """The `YYYY-MM-DD` of an entry file's date."""
    match = _DATE_LINE.search(text)
    return match.group(1) if match else ""


def _list(key: str, values: Sequence[str]) -> list[str]:
    if not values:
        return [f"{key}: []"]
    return [f"{key}:", *(f"  - {quote(item)}" for item in values)]


def read(text: str) -> tuple[dict[str, object], str]:
    """Read an entry file back (python-frontmatter, YAML safe loader): metadata and body."""
    import frontmatter  # and PyYAML behind it: loaded only to read files back

    post = frontmatter.loads(text)
    return dict(post.metadata), post.content
