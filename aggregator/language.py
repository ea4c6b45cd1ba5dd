"""BCP 47 language tags in their conventional case (`zh-cn` → `zh-CN`, `zh-hant` → `zh-Hant`)."""

from __future__ import annotations

import re
from functools import lru_cache

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


@lru_cache(maxsize=256)
def registered_lang(tag: str | None) -> str | None:
    """normalize_lang(tag) when it names a registered language (BCP 47's registry, as the
    published feeds require): a feed's `utf-8` or `x-default` is no language."""
    lang = normalize_lang(tag)
    if lang is None or len(lang.partition("-")[0]) == 1:
        return None
    import langcodes  # a fifth of a second to load: the fork server preloads it for workers

    return lang if langcodes.tag_is_valid(lang) else None
