"""The Hugo example site (examples/hugo-site) built by the real `hugo` over a feeds/ folder the
pipeline generated from every conversion case: no error, no warning (no raw HTML omitted, no
twin titles), one page per entry, and text that looked like Markdown or Hugo syntax shown as
it was written."""

from __future__ import annotations

import html
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aggregator.markdown import WORD_JOINER
from tests.entrycheck import HUGO_SITE, hugo_build, unsafe_in
from tests.helpers import REPO, run_cli

CASES = REPO / "tests" / "data" / "convert"
# Hugo's typographer curls straight quotes; the text is otherwise the same
UNTYPOGRAPHED = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
TWINS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Twins</title>'
    "<link>https://twins.example/</link>"
    + "".join(
        f"<item><title>{title}</title><link>https://twins.example/{n}</link><guid>{n}</guid>"
        f"<description>{body}</description></item>"
        for n, (title, body) in enumerate(
            [("Same title", "one"), ("Same title", "two"), ("", "Same text"), ("", "Same text")]
        )
    )
    + "</channel></rss>"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site's public/ folder."""
    root = tmp_path_factory.mktemp("hugo")
    (root / "twins.xml").write_text(TWINS, encoding="utf-8")
    feeds = [(case.name, next(case.glob("feed.*"))) for case in sorted(CASES.iterdir())]
    feeds += [(p.stem, p) for p in sorted((REPO / "samples").glob("*.xml"))]
    feeds.append(("twins", root / "twins.xml"))
    config = root / "config.toml"
    config.write_text(
        '[site]\ntimezone = "Europe/Paris"\n'
        + "".join(
            f'\n[[feeds]]\nname = "{name}"\nurl = "{path}"\ntags = ["all"]\n'
            "entry_categories = true\n"
            for name, path in feeds
        ),
        encoding="utf-8",
    )
    proc = run_cli("fetch", "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    shutil.copytree(HUGO_SITE, root / "examples" / "hugo-site")
    hugo_build(root / "examples" / "hugo-site", "Europe/Paris")
    return root / "examples" / "hugo-site" / "public"


def entry_pages(public: Path) -> dict[str, str]:
    """Each entry page's visible text (tags removed, entities decoded), by `<feed>/<id>`."""
    pages = {}
    for page in (public / "posts").glob("*/*/index.html"):
        markup = page.read_text(encoding="utf-8")
        content = markup.split('<div class="content">', 1)[1].split("</div>\n<p>", 1)[0]
        text = html.unescape(re.sub(r"<[^>]+>", "", content)).translate(UNTYPOGRAPHED)
        pages[f"{page.parent.parent.name}/{page.parent.name}"] = text.replace(WORD_JOINER, "")
    return pages


def page_of(public: Path, feed: str) -> str:
    [text] = [t for key, t in entry_pages(public).items() if key.startswith(f"{feed}/")]
    return text


def test_every_entry_becomes_a_page(site: Path) -> None:
    feeds = site.parents[2] / "feeds"
    entries = {p.relative_to(feeds).with_suffix("").as_posix() for p in feeds.rglob("*.md")}
    assert len(entries) > 30
    assert set(entry_pages(site)) == entries


def test_no_page_carries_raw_html_loss_or_anything_executable(site: Path) -> None:
    for page in site.rglob("*.html"):
        markup = page.read_text(encoding="utf-8")
        assert "raw HTML omitted" not in markup, page
        assert unsafe_in(markup) == [], page


def test_shortcode_text_is_shown_not_called(site: Path) -> None:
    text = page_of(site, "shortcodes")
    for shown in [
        'In prose: {{< figure src="x.png" >}} and {{% note %}}markdown{{% /note %}}',
        "Split by markup: {{< split >}} and {{% bold %}}.",
        'Inline code: {{< youtube id="abc" >}} and {{% ref "x" %}}.',
        "{{< highlight go >}}\npackage main\n{{< /highlight >}}\n{{% unclosed\n<!--more-->",
        "Unclosed in prose: {{< and {{% end.",
        "Go templates are fine: {{ .Title }} and {{- if . -}}.",
    ]:
        assert shown in text


def test_markdown_characters_are_shown_as_written(site: Path) -> None:
    text = page_of(site, "escaping")
    for shown in [
        "2*3*4 = 24 and snake_case_name and _under_ and **not bold** and [not a link](x)",
        "# not a heading",
        "1. not a list, - not a bullet, + neither",
        "> not a quote",
        "A tag as text: <b>bold?</b> and <script>alert(1)</script> and &amp; and &lt;.",
        "Backticks ` and `` and a back\\slash, a pipe | and tilde ~~strike~~.",
        "Heading with {#id .class onclick=x}",
    ]:
        assert shown in text
    markup = next((site / "posts" / "escaping").glob("*/index.html")).read_text(encoding="utf-8")
    assert re.search(r'<h2 id="[^"]*">Heading with \{#id \.class onclick=x\}</h2>', markup)


def test_rich_content_keeps_its_structure(site: Path) -> None:
    markup = next((site / "posts" / "rich-rss").glob("*/index.html")).read_text(encoding="utf-8")
    for element in ["<h2", "<strong>bold</strong>", '<ol start="3">', "<blockquote>", "<table>"]:
        assert element in markup
    assert 'data-lang="python"' in markup and 'data-lang="go"' in markup
    assert re.search(r"<dt>Term</dt>\s*<dd>\s*(<p>)?Its definition", markup)
    assert '<a href="https://rich.example.com/about" title="About us">' in markup


def test_twin_titles_get_told_apart(site: Path) -> None:
    titles = [
        re.search(r"<h1>(.*?)</h1>", page.read_text(encoding="utf-8"))
        for page in (site / "posts" / "twins").glob("*/index.html")
    ]
    names = sorted(html.unescape(t.group(1)) for t in titles if t)
    assert len(names) == len(set(names)) == 4
    assert "Same title" in names and "Same text" in names


def test_published_feeds_show_the_same_text_as_the_site(site: Path) -> None:
    feed = ET.parse(site.parents[2] / "output" / "all.xml").getroot()
    atom = "{http://www.w3.org/2005/Atom}"
    [content] = [
        e.findtext(f"{atom}content") or ""
        for e in feed.iter(f"{atom}entry")
        if (e.findtext(f"{atom}title") or "").startswith("Writing {{< figure >}}")
    ]
    text = html.unescape(re.sub(r"<[^>]+>", "", content)).replace(WORD_JOINER, "")
    assert 'Inline code: {{< youtube id="abc" >}} and {{% ref "x" %}}.' in text
    assert "{{< highlight go >}}\npackage main\n{{< /highlight >}}\n{{% unclosed" in text
    assert "/*" not in text and "*/" not in text
