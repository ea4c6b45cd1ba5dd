"""Front matter and plain-text fields: any title round-trips through YAML, summaries never cut a
character in half, dates always come out in FORMAT.md's layout, languages in BCP 47 case."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import regex
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aggregator.config import FeedConfig, FrontMatterDefaults
from aggregator.convert import convert_entry, entry_date, format_date
from aggregator.frontmatter import FrontMatter, quote, read, render, with_tags, with_title
from aggregator.language import normalize_lang
from aggregator.models import EntryData, FeedData
from aggregator.text import drop_controls, fold, truncate, truncate_words
from tests.entrycheck import FRONT_KEYS

SOURCE = FeedConfig(
    name="src", url="https://src.example/feed", lang=None, tags=("t",), front=FrontMatterDefaults()
)
FEED = FeedData(title="Feed", link="https://src.example/", language=None, entries=())
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def entry(**fields: object) -> EntryData:
    values: dict[str, object] = {
        "guid": "g",
        "link": "https://src.example/a",
        "title": "A title",
        "content_html": "<p>Some body text.</p>",
        "published": datetime(2026, 11, 1, tzinfo=UTC),
        "updated": None,
    }
    values.update(fields)
    return EntryData(**values)  # type: ignore[arg-type]


def front(title: str) -> FrontMatter:
    return FrontMatter(
        title=title,
        date="2026-11-01 00:00:00",
        summary=title,
        categories=("src",),
        lang="en",
        tags=("src", title or "x"),
        thumbnail="",
        comments=False,
        authorbox=False,
        pager=True,
        toc=False,
        mathjax=False,
        sidebar="right",
        widgets=("search",),
    )


@given(st.text())
def test_any_string_round_trips_through_yaml(value: str) -> None:
    without_surrogates = "".join(c for c in value if not 0xD800 <= ord(c) <= 0xDFFF)
    assert yaml.safe_load(f"key: {quote(value)}") == {"key": without_surrogates}


@given(st.text())
def test_any_title_reads_back_from_the_entry_file(title: str) -> None:
    meta, body = read(render(front(title)) + "Body\n")
    clean = "".join(c for c in title if not 0xD800 <= ord(c) <= 0xDFFF)
    assert list(meta) == FRONT_KEYS
    assert meta["title"] == clean and meta["summary"] == clean
    assert body == "Body"


NASTY_TITLES = [
    ("Re: colons: everywhere", "Re: colons: everywhere"),
    ("\"double\" and 'single' quotes", "\"double\" and 'single' quotes"),
    ("---", "---"),
    ("line one\nline two\r\n---\nthree", "line one line two --- three"),
    ("@handle", "@handle"),
    ("* star", "* star"),
    ("& anchor", "& anchor"),
    ("! tag", "! tag"),
    ("% percent", "% percent"),
    ("`tick` | pipe > gt # hash", "`tick` | pipe > gt # hash"),
    ("emoji 👍🏽 family 👨‍👩‍👧 flag 🇫🇷", "emoji 👍🏽 family 👨‍👩‍👧 flag 🇫🇷"),
    ("bell\x07 null\x00 escape\x1b del\x7f c1\x9b end", "bell null escape del c1 end"),
    ("tab\there", "tab here"),
    ("yes", "yes"),
    ("null", "null"),
    ("1e3", "1e3"),
    ("{{< shortcode >}}", "{{< shortcode >}}"),
    ("\u2028line separator\u2029", "line separator"),
    ("trailing backslash \\", "trailing backslash \\"),
]


@pytest.mark.parametrize(("raw", "expected"), NASTY_TITLES)
def test_nasty_titles_are_plain_one_line_text(raw: str, expected: str) -> None:
    post = convert_entry(entry(title=raw), FEED, SOURCE, UTC_ZONE, NOW)
    meta, _ = read(post.text)
    assert meta["title"] == expected == post.title
    title_line = post.text.splitlines()[1]
    assert title_line.startswith('title: "') and title_line.endswith('"')


def test_html_title_is_decoded_and_stripped() -> None:
    raw = "<b>Bold</b> &amp; <script>alert(1)</script>&lt;code&gt; &eacute;"
    post = convert_entry(entry(title=raw, title_html=True), FEED, SOURCE, UTC_ZONE, NOW)
    assert post.title == "Bold & <code> é"


@pytest.mark.parametrize(
    ("text", "length", "expected"),
    [
        ("short", 10, "short"),
        ("exactly ten", 11, "exactly ten"),
        ("cafe\u0301 au lait", 4, "cafe\u0301..."),
        ("thumbs 👍🏽👍🏽", 8, "thumbs 👍🏽..."),
        ("family 👨‍👩‍👧 photo", 8, "family 👨‍👩‍👧..."),
        ("flags 🇫🇷🇩🇪", 7, "flags 🇫🇷..."),
        ("한국어 텍스트", 3, "한국어..."),
        ("नमस्ते दुनिया", 2, "नम..."),
    ],
)
def test_summary_cuts_on_grapheme_boundaries(text: str, length: int, expected: str) -> None:
    assert truncate(text, length) == expected


# every kind of character the cluster rules treat apart (CR, LF, controls, Extend, ZWJ,
# SpacingMark, Prepend, Hangul jamo and syllables, regional indicators, pictographs), and
# characters that are clusters of their own (Latin, CJK, emoji)
_CLUSTER_PARTS = [
    *("a", " ", "\r", "\n", "\r\n", "\t", "\x01", "\u0301", "é", "👍🏽", "😀", "中", "\uff0c"),
    *("\u200d", "\ufe0f", "\U0001f3fd", "\U0001f1eb", "\U0001f1f7", "\u1100", "\u1161"),
    *("\u11a8", "가", "각", "\u093f", "\u0915", "\u094d", "\u0600", "\u0e01", "\u0e33"),
]


@settings(max_examples=1000, deadline=None)
@given(
    text=st.lists(st.sampled_from(_CLUSTER_PARTS)).map("".join),
    length=st.integers(min_value=1, max_value=12),
)
def test_truncation_counts_clusters_however_the_text_is_made(text: str, length: int) -> None:
    clusters = regex.findall(r"\X", text)
    expected = text if len(clusters) <= length else "".join(clusters[:length]).rstrip() + "..."
    assert truncate(text, length) == expected


@settings(max_examples=1000, deadline=None)
@given(
    text=st.lists(st.sampled_from(_CLUSTER_PARTS)).map("".join),
    length=st.integers(min_value=1, max_value=12),
)
@example(text="abc d \u0301", length=5)  # the space after the cut is not a cluster of its own
def test_untitled_names_cut_on_clusters_and_words_however_the_text_is_made(
    text: str, length: int
) -> None:
    clusters = regex.findall(r"\X", text)
    if len(clusters) <= length:
        assert truncate_words(text, length) == text
        return
    cut = "".join(clusters[:length])
    space = cut.rfind(" ")
    if not clusters[length].isspace() and space > len(cut) // 2:
        cut = cut[:space]
    assert truncate_words(text, length) == cut.rstrip() + "..."


_WHITE = [chr(c) for c in range(0x3001) if chr(c).isspace() or re.fullmatch(r"\s", chr(c))]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_WHITE), st.characters()), max_size=20).map("".join))
def test_folding_splits_on_what_a_regex_calls_white_space(text: str) -> None:
    assert fold(text) == re.sub(r"\s+", " ", drop_controls(text)).strip()


def test_summary_comes_from_the_body_text_folded() -> None:
    body = "<p>Hello   <b>world</b>,</p><p>this\nis 👍🏽 the body of a rather long entry.</p>"
    source = replace(SOURCE, front=replace(SOURCE.front, summary_length=26))
    post = convert_entry(entry(content_html=body), FEED, source, UTC_ZONE, NOW)
    assert post.summary == "Hello world, this is 👍🏽 the..."


def test_untitled_entries_are_named_by_their_first_words_else_their_link() -> None:
    words = "<p>" + "word " * 30 + "</p>"
    named = convert_entry(entry(title="", content_html=words), FEED, SOURCE, UTC_ZONE, NOW)
    assert named.title == truncate_words("word " * 30, 60) and named.title.endswith("word...")
    bare = convert_entry(entry(title="", content_html=""), FEED, SOURCE, UTC_ZONE, NOW)
    assert bare.title == "https://src.example/a"
    local = replace(SOURCE, local_path=Path("feed.xml"))
    nothing = convert_entry(
        entry(title=" ", content_html="", link=None), replace(FEED, link=None), local, UTC_ZONE, NOW
    )
    assert nothing.title == "src 2026-11-01 00:00:00"


@pytest.mark.parametrize(
    "claimed",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(103, 5, 6, 7, 8, 9, tzinfo=UTC),
        datetime(1969, 12, 31, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
        None,
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_absurd_or_missing_dates_become_the_first_seen_time(
    claimed: datetime | None, zone: str
) -> None:
    item = entry(published=claimed, updated=claimed)
    assert entry_date(item, NOW) == NOW
    post = convert_entry(item, FEED, SOURCE, ZoneInfo(zone), NOW)
    assert read(post.text)[0]["date"] == format_date(NOW, ZoneInfo(zone))


def test_a_date_in_the_next_two_days_becomes_the_first_seen_time() -> None:
    # Hugo builds no page dated in the future, where the published feeds already show it
    assert entry_date(entry(published=NOW + timedelta(hours=6)), NOW) == NOW
    ahead = entry(published=NOW + timedelta(days=400), updated=NOW - timedelta(hours=1))
    assert entry_date(ahead, NOW) == NOW - timedelta(hours=1)


def test_updated_time_stands_in_for_a_missing_published_time() -> None:
    updated = datetime(2026, 10, 1, 8, 30, tzinfo=UTC)
    assert entry_date(entry(published=None, updated=updated), NOW) == updated
    assert format_date(updated, ZoneInfo("Asia/Shanghai")) == "2026-10-01 16:30:00"


@given(st.datetimes(timezones=st.timezones()))
def test_any_claimed_date_gives_a_front_matter_date(claimed: datetime) -> None:
    text = format_date(entry_date(entry(published=claimed), NOW), ZoneInfo("Asia/Shanghai"))
    assert datetime.strptime(text, "%Y-%m-%d %H:%M:%S").year >= 1970


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("zh-cn", "zh-CN"),
        ("ZH_TW", "zh-TW"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("en", "en"),
        ("EN-us", "en-US"),
        ("es-419", "es-419"),
        ("sr-latn-rs", "sr-Latn-RS"),
        ("de-CH-1996", "de-CH-1996"),
        ("en-x-private", "en-x-private"),
        ("x-klingon", "x-klingon"),
        (" fr ", "fr"),
        ("english", None),
        ("", None),
        ("en us", None),
        ("123", None),
        (None, None),
    ],
)
def test_languages_are_normalised_to_bcp47_case(tag: str | None, expected: str | None) -> None:
    assert normalize_lang(tag) == expected


def test_language_precedence_config_entry_feed_default() -> None:
    item = entry(language="fr-fr")
    feed = replace(FEED, language="de-de")
    assert convert_entry(item, feed, replace(SOURCE, lang="zh-cn"), UTC_ZONE, NOW).lang == "zh-CN"
    assert convert_entry(item, feed, SOURCE, UTC_ZONE, NOW).lang == "fr-FR"
    assert convert_entry(entry(), feed, SOURCE, UTC_ZONE, NOW).lang == "de-DE"
    bad = replace(FEED, language="not a language")
    ja = replace(SOURCE, front=replace(SOURCE.front, lang="ja"))
    assert convert_entry(entry(), bad, ja, UTC_ZONE, NOW).lang == "ja"
    for unregistered in ("utf-8", "x-default", "i-klingon", "en-ZZZZ-x"):  # shaped as tags
        feed = replace(FEED, language=unregistered)
        assert convert_entry(entry(language=unregistered), feed, ja, UTC_ZONE, NOW).lang == "ja"


def test_a_photo_or_episode_without_text_is_summed_up_by_what_it_shows() -> None:
    """An empty summary makes Hugo's list pages sum the body up, source line and all."""
    photo = entry(
        content_html='<p><img src="https://e.example/sunset.jpg" alt="Sunset &amp; sea"></p>'
    )
    assert (
        read(convert_entry(photo, FEED, SOURCE, UTC_ZONE, NOW).text)[0]["summary"] == "Sunset & sea"
    )
    episode = entry(content_html="", enclosures=("https://e.example/ep12.mp3",))
    post = convert_entry(episode, FEED, SOURCE, UTC_ZONE, NOW)
    assert read(post.text)[0]["summary"] == "ep12.mp3"


def test_control_characters_never_reach_the_file() -> None:
    nasty = "<p>text\x00with\x08controls\x1f and \ufffe noncharacters</p>"
    post = convert_entry(entry(content_html=nasty, title="t\x0bitle"), FEED, SOURCE, UTC_ZONE, NOW)
    assert drop_controls(post.text) == post.text
    assert "\n\ntextwithcontrols and noncharacters\n\n" in post.text


def test_tags_and_title_of_a_file_can_be_replaced() -> None:
    text = render(front("Old")) + "Body\n"
    changed = with_title(with_tags(text, ["a", 'b "quoted"']), "New: title")
    meta, body = read(changed)
    assert meta["title"] == "New: title" and meta["tags"] == ["a", 'b "quoted"']
    assert list(meta) == FRONT_KEYS and body == "Body"
    assert with_tags(changed, ["src", "Old"]).replace("New: title", "Old") == text
