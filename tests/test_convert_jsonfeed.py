"""JSON Feed 1.0/1.1 sources: told from XML by content type or content, read into the same
entries as RSS and Atom, and any malformed document is a one-line reason, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.parse import parse_feed
from tests.entrycheck import check_entry_file
from tests.helpers import http_server, make_project, run_cli, serve_bytes

ITEM = {"id": "1", "url": "https://j.example/1", "content_html": "<p>x</p>"}


def feed(**fields: object) -> bytes:
    document: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [ITEM],
    }
    document.update(fields)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (feed(), ""),
        (feed(), "application/feed+json; charset=utf-8"),
        (b"\xef\xbb\xbf \n" + feed(), "text/plain"),
        (json.dumps(json.loads(feed())).encode("utf-16"), ""),
        (feed(version="https://jsonfeed.org/version/1"), "application/json"),
    ],
)
def test_json_feeds_are_recognised(body: bytes, content_type: str) -> None:
    parsed = parse_feed(body, content_type)
    assert [e.guid for e in parsed.entries] == ["1"] and parsed.title == "J"


def test_xml_served_as_json_is_still_read_as_xml() -> None:
    rss = b'<rss version="2.0"><channel><item><guid>x</guid><title>t</title></item></channel></rss>'
    assert parse_feed(rss, "application/json").entries[0].title == "t"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "not a JSON Feed object"),
        (json.dumps({"items": []}).encode(), "without a jsonfeed.org version"),
        (feed(version="https://example.org/v2"), "without a jsonfeed.org version"),
        (feed(items={"1": ITEM}), "without an items list"),
        (feed(items=[]), "feed has no entries"),
        (feed(items=[1, "two", None]), "feed has no entries"),
        (b"{" * 100_000, "invalid JSON"),
    ],
)
def test_malformed_json_feeds_are_named(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(body, "application/feed+json")
    assert reason in str(caught.value) and "\n" not in str(caught.value)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
ITEM_KEYS = st.sampled_from(
    [
        "id",
        "url",
        "external_url",
        "title",
        "content_html",
        "content_text",
        "summary",
        "image",
        "banner_image",
        "date_published",
        "date_modified",
        "author",
        "authors",
        "tags",
        "language",
        "attachments",
    ]
)


@settings(max_examples=100)
@given(st.lists(st.dictionaries(ITEM_KEYS, JSON_VALUES, max_size=8), max_size=4), JSON_VALUES)
def test_items_of_any_shape_never_crash(items: list[dict[str, object]], title: object) -> None:
    try:
        parsed = parse_feed(feed(items=items, title=title, authors=title))
    except ParseError as exc:
        assert str(exc) == "feed has no entries"
        return
    assert len(parsed.entries) == len(items)


def test_a_json_feed_served_over_http_lands_like_rss(tmp_path: Path) -> None:
    body = feed(
        home_page_url="https://j.example/",
        items=[
            {
                "id": 7,
                "url": "https://j.example/7",
                "title": "Seven",
                "content_html": '<p>Hi <img src="/i.png"></p>',
                "date_published": "2026-11-02T10:00:00+01:00",
                "tags": ["Tag One"],
            }
        ],
    )
    with http_server({"/feed.json": serve_bytes(body, "application/feed+json")}) as base:
        config = make_project(
            tmp_path,
            "[fetch]\nallow_private_networks = true\n"
            f'[[feeds]]\nname = "j"\nurl = "{base}/feed.json"\nentry_categories = true\n',
        )
        proc = run_cli("fetch", "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    [path] = list((tmp_path / "feeds" / "j").glob("*.md"))
    meta = check_entry_file(path)
    assert meta["title"] == "Seven" and meta["date"] == "2026-11-02 09:00:00"
    assert meta["tags"] == ["j", "tag-one"] and meta["thumbnail"] == "https://j.example/i.png"
