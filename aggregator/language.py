"""BCP 47 language tags in their conventional case (`zh-cn` → `zh-CN`, `zh-hant` → `zh-Hant`)."""

from __future__ import annotations

import re

_TAG = re.compile(r"^(?:[a-z]{2,3}|[xi])(?:-[a-z0-9]{1,8})*$")


def normalize_lang(tag: str | None) -> str | None:
    """The tag in BCP 47's conventional case with `_` read as `-`, or None when it is not a
    language tag (the primary subtag must be a 2-3 letter code, or `x`/`i`)."""
    if not tag:
        return None
    text = tag.strip().replace("_", "-").lower()
    if not _TAG.match(text):
        return None
    parts = text.split("-")
    out = [parts[0]]
    extension = len(parts[0]) == 1
    for part in parts[1:]:
        if extension or len(part) == 1:
            extension = True
            out.append(part)
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())
        else:
            out.append(part)
    return "-".join(out)
