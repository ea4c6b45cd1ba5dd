"""OPML in and out: nested folders and categories become tags, duplicates and non-web URLs are
skipped with a reason, names come from titles, hostile files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.feedlist import from_outlines, name_from_title, to_outlines
from aggregator.identity import usable_tag
from aggregator.opml import OpmlError, Outline, parse_opml, render_opml
from tests.helpers import make_project

NESTED = """<?xml version="1.0"?>
<opml version="1.0"><head><title>Reader export</title></head><body>
  <outline text="Tech">
    <outline text="Linux">
      <outline type="rss" text="LWN.net" xmlUrl="https://lwn.net/headlines/rss"
               htmlUrl="https://lwn.net/" category="/News/Kernel,oss" language="en"/>
    </outline>
    <outline type="rss" title="Blog" text="ignored" xmlUrl="https://one.example/feed"/>
  </outline>
  <outline type="rss" text="Blog" xmlUrl="https://two.example/feed"/>
  <outline type="rss" text="Again" xmlUrl="HTTPS://LWN.net/headlines/rss#top"/>
  <outline type="rss" text="Known" xmlUrl="https://known.example/rss"/>
  <outline type="rss" text="Local" xmlUrl="file:///etc/passwd"/>
  <outline type="rss" text="科技新闻" xmlUrl="https://keji.example/rss"/>
</body></opml>""".encode()


def test_import_maps_folders_and_categories_to_tags_and_skips_duplicates(
    tmp_path: Path,
) -> None:
    config = load_config(
        make_project(tmp_path, '[[feeds]]\nname = "known"\nurl = "https://known.example/rss"\n')
    )
    result = from_outlines(config, parse_opml(NESTED))
    assert [(f.name, f.url, f.tags, f.lang) for f in result.feeds] == [
        ("lwn-net", "https://lwn.net/headlines/rss", ("Tech", "Linux", "Kernel", "oss"), "en"),
        ("blog", "https://one.example/feed", ("Tech",), None),
        ("blog-2", "https://two.example/feed", (), None),
        ("科技新闻", "https://keji.example/rss", (), None),
    ]
    assert result.skipped == [
        "HTTPS://LWN.net/headlines/rss#top: already in the config as 'lwn-net'",
        "https://known.example/rss: already in the config as 'known'",
        "file:///etc/passwd: not an http(s) URL",
    ]


def test_render_then_parse_keeps_every_field(tmp_path: Path) -> None:
    config = load_config(
        make_project(
            tmp_path,
            '[[feeds]]\nname = "a"\nurl = "https://a.example/rss"\ntags = ["x", "y"]\nlang = "fr"\n'
            '[[feeds]]\nname = "b"\nurl = "https://b.example/atom?x=1&y=2"\n',
        )
    )
    outlines = to_outlines(config)
    assert parse_opml(render_opml("Mine", outlines)) == outlines


def test_entity_declarations_are_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaa">]><opml><body/></opml>'
    with pytest.raises(OpmlError, match="entity"):
        parse_opml(bomb)


@pytest.mark.parametrize(
    ("title", "url", "name"),
    [
        ("Ars Technica: All content", "https://x/", "ars-technica-all-content"),
        ("  腾讯  科技 ", "https://x/", "腾讯 科技"),
        ("", "https://www.example.org/rss", "example-org"),
    ],
)
def test_names_from_titles(title: str, url: str, name: str) -> None:
    assert name_from_title(title, url) == name


def test_a_title_that_cannot_be_a_tag_gives_a_slug_name() -> None:
    name = name_from_title("新闻/科技", "https://x/")
    assert name.startswith("feed-") and usable_tag(name)


def test_outline_defaults_render_as_before() -> None:
    document = render_opml("T", [Outline("a", "https://a.example/rss")]).decode()
    assert 'category="' not in document and 'language="' not in document
