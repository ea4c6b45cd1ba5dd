"""Defuse an XML document's internal DTD before feedparser reads it: external, parameter and
nested entities are dropped (no XXE, no billion laughs), and a document whose remaining plain
entities would expand past a limit (a quadratic blowup) is refused."""

from __future__ import annotations

import re
from collections import Counter

from aggregator import defaults
from aggregator.errors import AggregatorError

PROLOG = re.compile(rb"(?:\xef\xbb\xbf)?(?:\s++|<\?.*?\?>|<!--.*?-->)*+", re.DOTALL)
DOCTYPE_OPEN = re.compile(rb"<!DOCTYPE\s[^\[>]*\[")
SUBSET_REST = re.compile(rb"""(?:[^\]"'<]++|"[^"]*+"|'[^']*+'|<!--.*?-->|<)*+\]\s*>""", re.DOTALL)
PLAIN_ENTITY = re.compile(rb"""<!ENTITY\s+([A-Za-z_][\w.-]*)\s+(?:"([^"]*)"|'([^']*)')\s*>""")
PLAIN_VALUE = re.compile(rb'&#\w+;|[^&%<"]*')
REFERENCE = re.compile(rb"&([A-Za-z_][\w.-]*);")


class EntityError(AggregatorError):
    """A document whose DTD cannot be read, or whose entities would expand too far."""


def defuse(body: bytes, limit: int = defaults.ENTITY_EXPANSION_LIMIT) -> bytes:
    """`body` with its internal DTD subset reduced to plain text entities, each on its own line
    (the form feedparser keeps); unchanged when it has no internal subset."""
    start = PROLOG.match(body)
    doctype = DOCTYPE_OPEN.match(body, start.end() if start else 0)
    if doctype is None:
        return body
    subset = SUBSET_REST.match(body, doctype.end())
    if subset is None:
        raise EntityError("unreadable DOCTYPE")
    kept: dict[bytes, bytes] = {}
    for match in PLAIN_ENTITY.finditer(body, doctype.end(), subset.end()):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if PLAIN_VALUE.fullmatch(value):
            kept.setdefault(match.group(1), value)
    rest = body[subset.end() :]
    if kept:
        uses = Counter(REFERENCE.findall(rest))
        if sum(len(value) * uses[name] for name, value in kept.items()) > limit:
            raise EntityError(
                f"entity bomb refused: its entities would expand past {limit:,} bytes"
            )
    declarations = b"".join(b'<!ENTITY %s "%s">\n' % item for item in kept.items())
    return b"".join((body[: doctype.end()], b"\n", declarations, b"]>", rest))
