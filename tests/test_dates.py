"""Dates feedparser misread are read right, or as no date (the entry then gets the time it
was first seen), on both parsing paths: CJK dates, zone names feedparser lacks, and fields out
of range, which it rolled over. The plain RSS reader's shortcut for the commonest shape reads
what feedparser reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from feedparser.datetimes import _parse_date
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.dates import parse_date
from aggregator.parse import parse_feed
from tests.helpers import rss


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("2024年3月12日 10:00", datetime(2024, 3, 12, 10, 0)),
        ("2024年03月12日", datetime(2024, 3, 12)),
        ("2024年3月12日\uff08火\uff09 午後3時05分", datetime(2024, 3, 12, 15, 5)),
        ("2024年3月12日 10:00:30 +08:00", datetime(2024, 3, 12, 2, 0, 30)),
        ("2004년 05월 28일 01:31:15", datetime(2004, 5, 28, 1, 31, 15)),
        ("2024年2月30日 10:00", None),
        ("2024年3月12日 某时", None),
        ("Tue, 12 Mar 2024 10:00:00 CEST", datetime(2024, 3, 12, 8, 0)),
        ("Tue, 12 Mar 2024 10:00:00 CET", datetime(2024, 3, 12, 9, 0)),
        ("Tue, 12 Mar 2024 10:00:00 JST", datetime(2024, 3, 12, 1, 0)),
        ("12 Mar 2024 10:00 KST", datetime(2024, 3, 12, 1, 0)),
        ("Tue, 12 Mar 2024 10:00:00 BST", datetime(2024, 3, 12, 9, 0)),
        ("2024-03-12 10:00:00 CEST", datetime(2024, 3, 12, 8, 0)),
        ("Tue, 12 Mar 2024 10:00:00 IST", datetime(2024, 3, 12, 10, 0)),  # ambiguous: as before
        ("2024-13-45", None),
        ("2024-02-30T10:00:00Z", None),
        ("2024-03-12T10:61:00Z", None),
        ("2024-03-12T10:00:00+01:00", datetime(2024, 3, 12, 9, 0)),
        ("Tue, 12 Mar 2024 10:00:00 GMT", datetime(2024, 3, 12, 10, 0)),
    ],
)
@pytest.mark.parametrize("plain_rss", [True, False])
def test_dates_feedparser_misread(written: str, read: datetime | None, plain_rss: bool) -> None:
    document = rss("D", [("1", "x")]).replace(b"Mon, 02 Nov 2026 10:00:00 GMT", written.encode())
    [entry] = parse_feed(document, "application/rss+xml", plain_rss=plain_rss).entries
    assert entry.published == (read.replace(tzinfo=UTC) if read else None)


_DAYS = st.sampled_from(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "mon", "Xyz"])
_MONTHS = st.sampled_from(["Jan", "Feb", "Sep", "Oct", "Dec", "jan", "Foo"])
_TWO = st.integers(0, 99).map(lambda n: f"{n:02d}")
_ZONE = st.sampled_from(["+0000", "-0500", "+1400", "-9999", "GMT", "UT", "Z", "CEST", "EST"])
_RFC822_LIKE = st.builds(
    lambda day, date, month, year, hour, minute, second, zone: (
        f"{day}, {date} {month} {year} {hour}:{minute}:{second} {zone}"
    ),
    _DAYS,
    _TWO,
    _MONTHS,
    st.integers(0, 9999).map(lambda n: f"{n:04d}"),
    _TWO,
    _TWO,
    _TWO,
    _ZONE,
)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(st.one_of(_RFC822_LIKE, st.text(max_size=40)))
def test_the_common_shape_reads_as_feedparser_reads_it(value: str) -> None:
    assert parse_date(value) == _parse_date(value)
