"""Make an XML document safe for feedparser: its internal DTD is reduced to plain text entities
(no XXE, no billion laughs), and it is refused when those would expand past a limit (a quadratic
blowup) or when an element has so many attributes that feedparser's SAX handler, quadratic in
them, would run for hours."""

from __future__ import annotations

import re
from collections import Counter

from aggregator import defaults
from aggregator.errors import AggregatorError

PROLOG = re.compile(rb"(?:\xef\xbb\xbf)?(?:\s++|<\?.*?\?>|<!--.*?-->)*+", re.DOTALL)
DOCTYPE_OPEN = re.compile(rb"<!DOCTYPE\s[^\[>]*\[")
# a comment that does not close reads on to the end (and the DOCTYPE is unreadable), as a quote
# does, instead of its `<` being text: from each such `<!--`, a search for `-->` would read on
SUBSET_REST = re.compile(
    rb"""(?:[^\]"'<]++|"[^"]*+"|'[^']*+'|<!--(?:.*?-->|.*)|<)*+\]\s*>""", re.DOTALL
)
PLAIN_ENTITY = re.compile(rb"""<!ENTITY\s+([A-Za-z_][\w.-]*)\s+(?:"([^"]*)"|'([^']*)')\s*>""")
PLAIN_VALUE = re.compile(rb'&#\w+;|[^&%<"]*')
REFERENCE = re.compile(rb"&([A-Za-z_][\w.-]*);")
LONG_TAG = re.compile(rb"<[A-Za-z_][^<>]{1024,}>")


class UnsafeDocument(AggregatorError):
    """A document refused before parsing; the message says why."""


def defuse(body: bytes, limit: int = defaults.ENTITY_EXPANSION_LIMIT) -> bytes:
    """`body` with its internal DTD subset reduced to plain text entities, each on its own line
    (the form feedparser keeps); unchanged when it has no internal subset."""
    for tag in LONG_TAG.finditer(body):
        if tag.group().count(b"=") > defaults.ATTRIBUTE_LIMIT:
            raise UnsafeDocument(
                f"refused: an element with more than {defaults.ATTRIBUTE_LIMIT} attributes"
            )
    start = PROLOG.match(body)
    doctype = DOCTYPE_OPEN.match(body, start.end() if start else 0)
    if doctype is None:
        return body
    subset = SUBSET_REST.match(body, doctype.end())
    if subset is None:
        raise UnsafeDocument("unreadable DOCTYPE")
    kept: dict[bytes, bytes] = {}
    for match in PLAIN_ENTITY.finditer(body, doctype.end(), subset.end()):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if PLAIN_VALUE.fullmatch(value):
            kept.setdefault(match.group(1), value)
    rest = body[subset.end() :]
    if kept:
        uses = Counter(REFERENCE.findall(rest))
        if sum(len(value) * uses[name] for name, value in kept.items()) > limit:
            raise UnsafeDocument(
                f"entity bomb refused: its entities would expand past {limit:,} bytes"
            )
    declarations = b"".join(b'<!ENTITY %s "%s">\n' % item for item in kept.items())
    return b"".join((body[: doctype.end()], b"\n", declarations, b"]>", rest))
