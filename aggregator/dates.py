"""Dates feedparser misreads, mended through its public registerDateHandler (its handlers serve
the plain RSS reader too): a CJK date (`2024年3月12日 10:00`, which its ISO 8601 handler read as
the first of the current month), zone names it lacks (`CEST`, `JST`: read as UTC), and numbers
out of range (`2024-13-45`, which it rolled over into 2025-01-01), read as no date."""

from __future__ import annotations

import contextlib
import re
import time
from datetime import UTC, datetime, timedelta, timezone

import feedparser
from feedparser.datetimes import _date_handlers, _parse_date
from feedparser.datetimes.rfc822 import _parse_date_rfc822
from feedparser.datetimes.w3dtf import _parse_date_w3dtf

# what a handler gives for a date that cannot be: a 9-tuple stops feedparser's search, and None
# would let its ISO 8601 handler roll the fields over
NO_DATE = time.struct_time((0, 0, 0, 0, 0, 0, 0, 0, 0))

# IST stands for India, Ireland and Israel: left out (as is CST, which feedparser reads as US)
ZONES = {
    "wet": 0,
    "west": 60,
    "bst": 60,
    "cet": 60,
    "cest": 120,
    "eet": 120,
    "eest": 180,
    "msk": 180,
    "hkt": 480,
    "sgt": 480,
    "jst": 540,
    "kst": 540,
    "aest": 600,
    "aedt": 660,
    "nzst": 720,
    "nzdt": 780,
}
_ISO_FIELDS = re.compile(
    r"\s*(\d{4})-(\d{1,2})(?:-(\d{1,2}))?(?:(?:T|\s+)(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?"
)
# year, month and day in Chinese, Japanese or Korean; a weekday in (full-width) brackets
_CJK = re.compile(
    r"\s*(\d{4})\s*[年년]\s*(\d{1,2})\s*[月월]\s*(\d{1,2})\s*[日일]\s*"
    r"(?:[(\uff08][^)\uff09]{1,4}[)\uff09])?\s*"
    r"(?:(上午|下午|午前|午後|오전|오후)?\s*(\d{1,2})\s*[:\uff1a時时点點시]\s*(\d{1,2})\s*[分분]?"
    r"(?:\s*[:\uff1a]?\s*(\d{1,2})\s*[秒초]?)?)?\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?\s*"
)
_CJK_YEAR = re.compile(r"\s*\d{4}\s*[年년]")
_AFTERNOON = ("下午", "午後", "오후")
# the commonest shape, `Tue, 02 Jan 2024 06:13:21 +0000`: the handlers tried before feedparser's
# RFC 822 one (these three and its W3C one) all give None for it
_RFC822 = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov"
    r"|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} (?:[+-][0-9]{4}|GMT|UT|Z)"
)


def install_in_feedparser() -> None:
    """Register the handlers (feedparser tries the last registered first)."""
    for handler in (_out_of_range, _named_zone, _cjk):
        feedparser.registerDateHandler(handler)


def parse_date(value: str) -> time.struct_time | None:
    """feedparser's reading of a date (its _parse_date, these handlers installed), the
    commonest shape handed straight to the RFC 822 handler, the first to take it."""
    parsed: time.struct_time | None = None
    if _RFC822.fullmatch(value) and _date_handlers[:5] == _BEFORE_RFC822:
        with contextlib.suppress(KeyError, OverflowError, ValueError):  # as _parse_date does
            parsed = _parse_date_rfc822(value)
    return parsed or _parse_date(value)


def _out_of_range(value: str) -> time.struct_time | None:
    """NO_DATE for an ISO 8601 date whose month, day, hour, minute or second cannot be; None
    (the other handlers read it) for any other string."""
    found = _ISO_FIELDS.match(value)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(f) if f else 0 for f in found.groups())
    try:
        datetime(year, month, day or 1)
    except ValueError:
        return NO_DATE
    return NO_DATE if hour > 24 or minute > 59 or second > 60 else None


def _named_zone(value: str) -> time.struct_time | None:
    """An RFC 822 or W3C date whose zone is a name feedparser does not know, read with the
    zone's offset."""
    parts = value.rsplit(None, 1)
    if len(parts) != 2 or parts[1].lower() not in ZONES:
        return None
    rest, minutes = parts[0], ZONES[parts[1].lower()]
    hours = f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}"
    parsed: time.struct_time | None = _parse_date_rfc822(
        f"{rest} {hours}{abs(minutes) % 60:02d}"
    ) or _parse_date_w3dtf(f"{rest} {hours}:{abs(minutes) % 60:02d}")
    return parsed


def _cjk(value: str) -> time.struct_time | None:
    """`2024年3月12日` (or `2024년 3월 12일`), then maybe a weekday in brackets, a time (`10:00`,
    `10時00分`, after 上午/下午, 午前/午後 or 오전/오후) and an offset; UTC unless one is given.
    NO_DATE for such a date that cannot be or goes on in words not read here, which
    feedparser would misread."""
    if not _CJK_YEAR.match(value):
        return None
    found = _CJK.fullmatch(" ".join(value.split()))  # one space a gap: no backtracking over runs
    if found is None:
        return NO_DATE
    year, month, day, half, hour, minute, second, zone = found.groups()
    hours = int(hour or 0)
    if half and hours > 12:
        return NO_DATE
    if half:
        hours = hours % 12 + (12 if half in _AFTERNOON else 0)
    try:
        when = datetime(
            int(year),
            int(month),
            int(day),
            hours,
            int(minute or 0),
            int(second or 0),
            tzinfo=_offset(zone),
        )
    except ValueError:
        return NO_DATE
    return when.astimezone(UTC).timetuple()


def _offset(zone: str | None) -> timezone:
    if not zone or zone in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


_BEFORE_RFC822 = [_cjk, _named_zone, _out_of_range, _parse_date_w3dtf, _parse_date_rfc822]
