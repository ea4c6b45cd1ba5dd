"""Commands that change the feed list, through the real console script: `add` (a feed URL or a
page to discover it from) and `remove` keep the config a person wrote; an OPML round trip."""

from __future__ import annotations

import json
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

from aggregator.autodiscover import feed_links
from aggregator.config import load_config
from aggregator.identity import slug
from tests.helpers import REPO, http_server, make_project, rss, run_cli, serve_bytes

SHIPPED = (REPO / "config.toml").read_text(encoding="utf-8")
PRIVATE_OK = SHIPPED.replace("[fetch]\n", "[fetch]\nallow_private_networks = true\n", 1)
SCIENCE_BLOCK = '[[feeds]]\nname = "science-notes"\nurl = "samples/science-atom.xml"\n'
ATOM = (
    b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
    b"<title>Notes from the Lab</title><id>urn:x:lab</id><updated>2026-11-02T10:00:00Z</updated>"
    b'<entry><id>urn:x:1</id><title>One</title><link href="https://lab.example/1"/>'
    b"<updated>2026-11-02T10:00:00Z</updated><summary>first</summary></entry></feed>"
)
PAGE = (
    b'<!doctype html><html><head><base href="/blog/"><link rel="stylesheet" href="s.css">'
    b'<link rel="alternate" hreflang="fr" type="text/html" href="/fr/">'
    b'<link rel="alternate" type="application/atom+xml" title="Atom" href="feeds/atom.xml">'
    b"</head><body><p>Welcome</p></body></html>"
)


def test_add_and_remove_keep_the_file_a_person_wrote(tmp_path: Path) -> None:
    with http_server(
        {"/feed.xml": serve_bytes(rss("Example Science Blog", [("x1", "One")]))}
    ) as base:
        config = make_project(tmp_path, PRIVATE_OK)
        args = ("--tag", "science", "--tag", "blogs", "--lang", "en", "-c", str(config))
        proc = run_cli("add", f"{base}/feed.xml", *args)
        assert proc.returncode == 0, proc.stderr
        added = (
            f'\n[[feeds]]\nname = "example-science-blog"\nurl = "{base}/feed.xml"\n'
            'lang = "en"\ntags = ["science", "blogs"]\n'
        )
        assert config.read_text(encoding="utf-8") == PRIVATE_OK + added
        assert "added example-science-blog" in proc.stderr

        again = run_cli("add", f"{base}/feed.xml", "-c", str(config))
        assert again.returncode == 0 and "already in the config as 'example-science-blog'" in (
            again.stderr
        )
        clash = run_cli("add", f"{base}/feed.xml?v=2", "--name", "keji", "-c", str(config))
        assert clash.returncode == 2 and "'keji' is already in the config" in clash.stderr
        assert config.read_text(encoding="utf-8") == PRIVATE_OK + added

    # the options every command takes may come before its name too
    removed = run_cli("-c", str(config), "remove", "science-notes")
    assert removed.returncode == 0, removed.stderr
    assert f"its entries stay in {tmp_path / 'feeds' / 'science-notes'}/" in removed.stderr
    expected = PRIVATE_OK.replace(SCIENCE_BLOCK + 'tags = ["science"]\n\n', "") + added
    assert config.read_text(encoding="utf-8") == expected
    assert "# A real source is an https URL:" in expected

    missing = run_cli("remove", "science-notes", "-c", str(config))
    assert missing.returncode == 2 and "no feed named 'science-notes'" in missing.stderr


def test_add_and_remove_keep_the_line_endings(tmp_path: Path) -> None:
    """A CRLF file stays CRLF; a file without a final newline gets its new table after a blank
    line all the same."""
    config = make_project(tmp_path, "")
    crlf = b'# my feeds\r\n[[feeds]]\r\nname = "a"\r\nurl = "samples/tech-rss.xml"'
    config.write_bytes(crlf)
    proc = run_cli("add", "samples/science-atom.xml", "--name", "b", "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    added = b'\r\n\r\n[[feeds]]\r\nname = "b"\r\nurl = "samples/science-atom.xml"\r\n'
    assert config.read_bytes() == crlf + added
    assert run_cli("remove", "a", "-c", str(config)).returncode == 0
    kept = config.read_bytes()
    assert b'name = "a"' not in kept and b'name = "b"' in kept
    assert kept.count(b"\n") == kept.count(b"\r\n")

    lf = crlf.replace(b"\r\n", b"\n")
    config.write_bytes(lf)
    assert (
        run_cli("add", "samples/science-atom.xml", "--name", "b", "-c", str(config)).returncode == 0
    )
    assert config.read_bytes() == lf + added.replace(b"\r\n", b"\n")


def test_add_and_remove_edit_the_file_a_symbolic_link_points_at(tmp_path: Path) -> None:
    """A config kept elsewhere (it may hold passwords in feed URLs, so 0600) stays there with
    its mode, and the link stays a link."""
    config = make_project(tmp_path, '[[feeds]]\nname = "a"\nurl = "samples/tech-rss.xml"\n')
    real = tmp_path / "etc" / "real.toml"
    real.parent.mkdir()
    config.rename(real)
    real.chmod(0o600)
    config.symlink_to(Path("etc") / "real.toml")
    proc = run_cli("add", "samples/science-atom.xml", "--name", "b", "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    assert config.is_symlink() and 'name = "b"' in real.read_text(encoding="utf-8")
    assert run_cli("remove", "a", "-c", str(config)).returncode == 0
    assert config.is_symlink() and 'name = "a"' not in real.read_text(encoding="utf-8")
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert [p.name for p in real.parent.iterdir()] == ["real.toml"]


def test_add_and_remove_take_feeds_written_as_inline_tables(tmp_path: Path) -> None:
    wire = '  { name = "tech-wire", url = "samples/tech-rss.xml" },\n'
    config = make_project(tmp_path, f"feeds = [\n{wire}]\n")
    proc = run_cli(
        "add", "samples/science-atom.xml", "--name", "sci", "--tag", "lab", "-c", str(config)
    )
    assert proc.returncode == 0, proc.stderr
    sci = '  {name = "sci", url = "samples/science-atom.xml", tags = ["lab"]},\n'
    assert config.read_text(encoding="utf-8") == f"feeds = [\n{wire}{sci}]\n"
    removed = run_cli("remove", "tech-wire", "-c", str(config))
    assert removed.returncode == 0, removed.stderr
    assert config.read_text(encoding="utf-8") == f"feeds = [\n{sci}]\n"


def test_add_discovers_the_feed_of_a_web_page(tmp_path: Path) -> None:
    routes = {
        "/blog/index.html": serve_bytes(PAGE, "text/html; charset=utf-8"),
        "/blog/feeds/atom.xml": serve_bytes(ATOM, "application/atom+xml"),
        "/plain.html": serve_bytes(b"<html><head></head><body>no feeds</body></html>", "text/html"),
    }
    with http_server(routes) as base:
        config = make_project(tmp_path, "[fetch]\nallow_private_networks = true\n")
        proc = run_cli("add", f"{base}/blog/index.html", "-c", str(config))
        assert proc.returncode == 0, proc.stderr
        listed = json.loads(run_cli("list", "--json", "-c", str(config)).stdout)
        assert listed == [
            {
                "name": "notes-from-the-lab",
                "url": f"{base}/blog/feeds/atom.xml",
                "tags": [],
                "lang": None,
                "schedule": "interval 30m",
            }
        ]

        none = run_cli("add", f"{base}/plain.html", "-c", str(config))
        assert none.returncode == 1
        assert none.stderr.startswith(f"{base}/plain.html: no feed found")
        assert "Traceback" not in none.stderr


def test_opml_round_trip_keeps_every_feed(tmp_path: Path) -> None:
    source = make_project(
        tmp_path / "a",
        '[site]\ntitle = "Mine"\n'
        '[[feeds]]\nname = "lwn"\nurl = "https://lwn.net/headlines/rss"\ntags = ["linux", "news"]\n'
        '[[feeds]]\nname = "qq"\nurl = "https://example.org/qq.xml"\nlang = "zh-CN"\n'
        '[[feeds]]\nname = "hn"\nurl = "https://hnrss.org/frontpage?points=100"\ntags = ["tech"]\n',
    )
    opml = tmp_path / "subscriptions.opml"
    assert run_cli("export-opml", "-o", str(opml), "-c", str(source)).returncode == 0
    root = ET.parse(opml).getroot()
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "Mine"
    outlines = [o for o in root.iter("outline") if o.get("xmlUrl")]
    assert all(o.get("type") == "rss" and o.get("text") for o in outlines)

    target_text = '# my own notes stay\n[site]\ntitle = "Theirs"  # a comment\n'
    target = make_project(tmp_path / "b", target_text)
    proc = run_cli("import-opml", str(opml), "-c", str(target))
    assert proc.returncode == 0, proc.stderr
    assert "imported 3 feeds, skipped 0" in proc.stderr
    assert target.read_text(encoding="utf-8").startswith(target_text)

    def feeds(config: Path) -> list[tuple[str, str, list[str], str | None]]:
        listed = json.loads(run_cli("list", "--json", "-c", str(config)).stdout)
        return [(f["name"], f["url"], f["tags"], f["lang"]) for f in listed]

    assert sorted(feeds(target)) == sorted(feeds(source))
    before = target.read_bytes()
    again = run_cli("import-opml", str(opml), "-c", str(target))
    assert again.returncode == 0 and "imported 0 feeds, skipped 3" in again.stderr
    assert target.read_bytes() == before


def test_tags_that_cannot_be_hugo_terms_are_refused_or_left_out(tmp_path: Path) -> None:
    """`..` or `a/b` as a tag would make Hugo render its term page over another page (`..` over
    the home page): `add --tag` refuses one before any network work, an import leaves it out."""
    config = make_project(tmp_path, "")
    refused = run_cli("add", "https://example.org/feed.xml", "--tag", "..", "-c", str(config))
    assert refused.returncode == 2 and "'..' cannot be a name or tag" in refused.stderr
    named = run_cli("add", "https://example.org/feed.xml", "--name", "a/b", "-c", str(config))
    assert named.returncode == 2 and "'a/b' cannot be a name or tag" in named.stderr
    assert config.read_text(encoding="utf-8") == ""

    opml = tmp_path / "reader.opml"
    opml.write_text(
        '<opml version="2.0"><body><outline text="..">'
        '<outline text="Tech/News"><outline text="LWN" xmlUrl="https://lwn.net/headlines/rss"'
        ' category="linux"/></outline></outline></body></opml>',
        encoding="utf-8",
    )
    proc = run_cli("import-opml", str(opml), "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    assert "'..' cannot be a tag" in proc.stderr and "'Tech/News' cannot be a tag" in proc.stderr
    listed = json.loads(run_cli("list", "--json", "-c", str(config)).stdout)
    assert [(f["url"], f["tags"]) for f in listed] == [("https://lwn.net/headlines/rss", ["linux"])]


def test_import_refuses_a_broken_opml_file(tmp_path: Path) -> None:
    config = make_project(tmp_path, "")
    bad = tmp_path / "bad.opml"
    bad.write_text("<opml><body><outline", encoding="utf-8")
    proc = run_cli("import-opml", str(bad), "-c", str(config))
    assert proc.returncode == 2
    assert f"aggregator: {bad}: not well-formed XML" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert config.read_text(encoding="utf-8") == ""


def test_feed_links_of_a_page() -> None:
    page = (
        '<html><head><link rel="alternate" type="text/html" href="/fr/">'
        '<LINK REL="Alternate feed" TYPE="application/rss+xml; charset=utf-8" HREF="rss.xml">'
        '<link rel="alternate" type="application/feed+json" href="https://cdn.example/f.json">'
        '<link rel="alternate" type="application/rss+xml" href="rss.xml">'
        '<link rel="icon" type="application/atom+xml" href="no.xml">'
        "</head></html>"
    )
    assert feed_links(page, "https://site.example/blog/post") == [
        "https://site.example/blog/rss.xml",
        "https://cdn.example/f.json",
    ]


def test_imported_names_get_folders_of_their_own(tmp_path: Path) -> None:
    """Names that differ only in case or punctuation would share a folder of feeds/ (and a
    lost database would give all their entries to one): an import numbers them apart."""
    config = make_project(
        tmp_path, '[[feeds]]\nname = "Tech News"\nurl = "https://a.example/feed.xml"\n'
    )
    opml = tmp_path / "reader.opml"
    opml.write_text(
        '<opml version="2.0"><body>'
        '<outline text="tech news" xmlUrl="https://b.example/feed.xml"/>'
        '<outline text="Tech-News" xmlUrl="https://c.example/feed.xml"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    proc = run_cli("import-opml", str(opml), "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    names = [feed.name for feed in load_config(config).feeds]
    assert len({slug(name) for name in names}) == 3, names
    taken = run_cli("add", "https://d.example/feed.xml", "--name", "TECH NEWS", "-c", str(config))
    assert taken.returncode == 2 and "already writes to the folder" in taken.stderr
