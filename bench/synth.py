"""Deterministic synthetic news feeds: RSS 2.0 with CJK and Latin text, images, categories.

Feed `index` at `version` holds entries `version .. version + entries - 1`, newest first, so
raising the version by one adds one new entry and drops the oldest. Every byte depends only on
the seed, the index, the version and the sizes: the same call gives the same feed on any machine.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cache

SEED = 8
ENTRIES = 50
CATEGORY_POOL = 40
BASE_DATE = datetime(2024, 1, 1, tzinfo=UTC)
ENTRY_SPACING = timedelta(minutes=37)
FEED_OFFSET = timedelta(seconds=7)
CHINESE_EVERY = 3  # every third feed is a Chinese-language site

_LATIN_WORDS = (
    "the market model chip cloud data open source release update security patch server "
    "network energy battery research team report growth city policy vote court launch "
    "satellite mission climate storage kernel browser compiler robot vision language startup "
    "funding quarter revenue device screen camera sensor privacy standard protocol latency "
    "throughput benchmark developer community editor museum festival harvest river bridge "
    "train airport weather forecast health vaccine study trial hospital school student"
)
_LATIN = _LATIN_WORDS.split()
_CJK = (
    "人工智能模型发布开源数据中心芯片公司市场研究团队报告增长城市政策科技网络能源电池卫星"
    "发射任务气候存储浏览器编译器机器人视觉语言创业融资季度收入设备屏幕相机传感器隐私标准"
    "协议延迟吞吐基准开发者社区编辑博物馆节日收获河流桥梁火车机场天气预报健康疫苗学校学生"
)
_AUTHORS = ("Li Wei", "Zhang Min", "Ana Souza", "Jonas Berg", "王芳", "陈静", "Priya Nair")


@cache
def category_names(pool: int) -> tuple[str, ...]:
    """`pool` distinct, slug-safe category names: words first, then numbered words."""
    words = _LATIN[:40]
    return tuple(
        words[n % len(words)] + ("" if n < len(words) else f"-{n // len(words)}")
        for n in range(pool)
    )


def _latin(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choices(_LATIN, k=words))
    return text[0].upper() + text[1:] + "."


def _cjk(rng: random.Random, chars: int) -> str:
    text = "".join(rng.choices(_CJK, k=chars))
    cut = rng.randrange(8, max(9, chars - 4))
    return f"{text[:cut]}\N{FULLWIDTH COMMA}{text[cut:]}\N{IDEOGRAPHIC FULL STOP}"


def _sentence(rng: random.Random, chinese: bool) -> str:
    if chinese:
        return _cjk(rng, rng.randrange(24, 48)) + f" {rng.choice(_LATIN).upper()} "
    return _latin(rng, rng.randrange(11, 21))


def _paragraph(rng: random.Random, chinese: bool, host: str) -> str:
    first, second = _sentence(rng, chinese), _sentence(rng, chinese)
    word = rng.choice(_LATIN)
    return (
        f"<p>{first} <strong>{word}</strong> {second} "
        f'<a href="https://{host}/topics/{word}?utm_source=rss">{word}</a></p>'
    )


def _content(rng: random.Random, index: int, number: int, chinese: bool, host: str) -> str:
    """About 1.6 KB of article HTML, with the markup real feeds carry (and some to sanitize)."""
    parts = [
        f'<p><img src="https://img.example.com/{index}/{number}/cover.jpg" '
        f'alt="cover" width="640" height="360"></p>',
        _paragraph(rng, chinese, host),
        f"<h2>{_latin(rng, 4)}</h2>",
        _paragraph(rng, chinese, host),
        "<ul>" + "".join(f"<li>{_latin(rng, 5)}</li>" for _ in range(3)) + "</ul>",
    ]
    kind = number % 4
    if kind == 0:
        parts.append(f"<pre><code class=\"language-python\">print('{_latin(rng, 3)}')</code></pre>")
    elif kind == 1:
        parts.append(
            "<table><tr><th>item</th><th>value</th></tr>"
            f"<tr><td>{rng.choice(_LATIN)}</td><td>{rng.randrange(1000)}</td></tr></table>"
        )
    elif kind == 2:
        parts.append(f'<p onclick="track()">{_sentence(rng, chinese)}</p><script>track()</script>')
    else:
        parts.append(f"<blockquote><p>{_sentence(rng, chinese)}</p></blockquote>")
    parts.append(
        f'<figure><img src="/media/{number}.png" alt="chart">'
        f"<figcaption>{_latin(rng, 6)}</figcaption></figure>"
    )
    return "".join(parts)


def entry_date(index: int, number: int) -> datetime:
    """Entries of one feed are 37 minutes apart; feeds are offset by seconds, never tied."""
    return BASE_DATE + number * ENTRY_SPACING + index * FEED_OFFSET


def _item(seed: int, index: int, number: int, chinese: bool, categories: tuple[str, ...]) -> str:
    rng = random.Random(f"{seed}-{index}-{number}")
    host = f"news{index}.example.com"
    title = _cjk(rng, rng.randrange(12, 24)) if chinese else _latin(rng, rng.randrange(6, 12))
    when = entry_date(index, number)
    link = f"https://{host}/{when:%Y/%m}/story-{number}.html"
    tags = "".join(
        f"<category>{name}</category>"
        for name in rng.sample(categories, k=min(len(categories), rng.randrange(2, 5)))
    )
    image = f"https://img.example.com/{index}/{number}/thumb.jpg"
    media = (
        f'<media:thumbnail url="{image}" width="320" height="180"/>'
        if number % 2
        else f'<enclosure url="{image}" type="image/jpeg" length="{rng.randrange(10**4, 10**5)}"/>'
    )
    summary = _sentence(rng, chinese)
    return (
        f"<item><title>{title}</title><link>{link}</link>"
        f'<guid isPermaLink="false">news{index}-{number}</guid>'
        f"<pubDate>{format_datetime(when)}</pubDate>"
        f"<dc:creator>{rng.choice(_AUTHORS)}</dc:creator>{tags}{media}"
        f"<description><![CDATA[{summary}]]></description>"
        f"<content:encoded><![CDATA[{_content(rng, index, number, chinese, host)}]]>"
        "</content:encoded></item>"
    )


def feed_xml(
    index: int,
    version: int = 0,
    entries: int = ENTRIES,
    category_pool: int = CATEGORY_POOL,
    seed: int = SEED,
) -> bytes:
    """Feed `index` as UTF-8 RSS 2.0 bytes (about 90 KB for 50 entries)."""
    chinese = index % CHINESE_EVERY == 0
    categories = category_names(category_pool)
    newest = version + entries - 1
    items = "".join(
        _item(seed, index, number, chinese, categories) for number in range(newest, version - 1, -1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/">'
        f"<channel><title>{'新闻' if chinese else 'News'} {index}</title>"
        f"<link>https://news{index}.example.com/</link>"
        f"<description>Synthetic feed {index}</description>"
        f"<language>{'zh-CN' if chinese else 'en'}</language>"
        f"<lastBuildDate>{format_datetime(entry_date(index, newest))}</lastBuildDate>"
        f"{items}</channel></rss>\n"
    ).encode()
