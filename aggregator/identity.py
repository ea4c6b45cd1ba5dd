"""Stable identities: entry ids from guid/link/title, canonical links, and path-safe slugs."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from aggregator.text import drop_controls

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "yclid",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "ref_src",
        "spm",
        "_ga",
        "_gl",
        "ncid",
        "cmpid",
        "sr_share",
        "oly_anon_id",
        "oly_enc_id",
        "rb_clickid",
        "s_cid",
        "vero_id",
        "wickedid",
    }
)
ENTRY_ID_LENGTH = 20
TAG_LENGTH = 60
# a category's `+` or `#` after a word is part of its name (`C++`, `C#`), else a separator
_SHARP_END = re.compile(r"(?<=[^\W_])#(?=\s|$)")
# the commonest link, which the general reading below leaves as it is (but for a `/` as its
# path): a lowercase http(s) scheme and host without port or user, no query or fragment
_PLAIN_LINK = re.compile(r"https?://([a-z0-9.-]+)(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?")


def canonical_link(link: str | None) -> str | None:
    """A link with case, default ports, fragments and tracking parameters normalized away."""
    if not link:
        return None
    link = link.strip()
    plain = _PLAIN_LINK.fullmatch(link)
    if plain:
        return link if plain.group(2) else f"{link}/"
    return _canonical(link)


def _canonical(link: str) -> str | None:
    try:
        parts = urlsplit(link)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    try:
        port = parts.port
    except ValueError:
        return None
    if port and not (scheme == "http" and port == 80) and not (scheme == "https" and port == 443):
        host = f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
    ]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def link_key(link: str | None) -> str | None:
    """What makes two entry links the same article: the canonical link without its scheme, a
    leading `www.` or a trailing slash, its query sorted."""
    canonical = canonical_link(link)
    if canonical is None:
        return None
    plain = _PLAIN_LINK.fullmatch(canonical)
    if plain:
        return f"//{plain.group(1).removeprefix('www.')}{(plain.group(2) or '').rstrip('/') or '/'}"
    return _key(canonical)


def _key(canonical: str) -> str:
    parts = urlsplit(canonical)
    host = parts.netloc.removeprefix("www.")
    path = parts.path.rstrip("/") or "/"
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return f"//{host}{path}?{query}" if query else f"//{host}{path}"


def entry_identity(
    source: str, guid: str | None, link: str | None, title: str, date: str | None
) -> str:
    """The entry's stable identity: its guid within the source, else its canonical link,
    else its title and date within the source."""
    if guid:
        return f"guid\x00{source}\x00{guid}"
    key = link_key(link)
    if key:
        return f"link\x00{key}"
    return f"title\x00{source}\x00{title}\x00{date or ''}"


def entry_alias(source: str, link_key: str, title: str, date: str | None) -> str:
    """A second identity for an entry without a guid: its link with its title and date. Its
    identity is its link while no other entry of the feed shares it, else its title and date;
    by this one the store finds it across that change."""
    return f"pair\x00{source}\x00{link_key}\x00{title}\x00{date or ''}"


_SOURCE_KINDS = ("guid", "title", "pair")  # identities that are a source's own


def source_prefixes(source: str) -> list[str]:
    """How each kind of identity that is a source's own begins, for this source."""
    return [f"{kind}\x00{source}\x00" for kind in _SOURCE_KINDS]


def identity_source(identity: str) -> str | None:
    """The source whose entry an identity names (a guid, a title and date, and an alias are a
    source's own); None for a link, which any source may list."""
    kind, _, rest = identity.partition("\x00")
    return rest.partition("\x00")[0] if kind in _SOURCE_KINDS else None


def entry_id(identity: str) -> str:
    """The file name (without .md) for an identity: lowercase hex, `[a-z0-9]` only."""
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:ENTRY_ID_LENGTH]


def tag_slug(text: str) -> str:
    """A tag from free text (an entry's category): lowercase words of any script (combining
    marks kept, in NFC) joined by `-`, a word's trailing `+` kept and `#` spelled `-sharp`
    (`C++`, `C#` ⇒ `c++`, `c-sharp`); empty when nothing is left."""
    text = _SHARP_END.sub("-sharp", unicodedata.normalize("NFC", drop_controls(text)).lower())
    words: list[str] = []
    word: list[str] = []
    for char in text + " ":
        if char.isalnum() or unicodedata.category(char)[0] == "M" or (char == "+" and word):
            word.append(char)
        elif word:
            words.append("".join(word))
            word = []
    return "-".join(words)[:TAG_LENGTH].strip("-")


TAG_RULE = "a letter or digit, and no '/', '\\' or control character"  # what usable_tag() asks


def usable_tag(tag: str) -> bool:
    """Whether a configured or imported tag can be a term of a Hugo site, which makes it a page
    at `/tags/<tag>/`: one with a letter or digit, no `/` or `\\` (`..` would make that page the
    home page, `a/b` a page of another section), no control character."""
    return bool(tag_slug(tag)) and "/" not in tag and "\\" not in tag and drop_controls(tag) == tag


def slug(text: str, fallback: str = "feed") -> str:
    """A lowercase `[a-z0-9-]` slug; non-Latin text keeps a short hash so it stays unique."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if cleaned and cleaned == re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-"):
        return cleaned[:80]
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned[:70]}-{digest}".strip("-") if cleaned else f"{fallback}-{digest}"


def without_credentials(url: str) -> str:
    """The URL without a `user:password@` part: links made from a feed's URL are published."""
    found = _userinfo(url)
    return urlunsplit(found[0]._replace(netloc=found[2])) if found else url


def shown_url(url: str) -> str:
    """A URL as people are shown it: a password in it masked (`user:***@host`)."""
    found = _userinfo(url)
    if found is None or ":" not in found[1]:
        return url
    parts, userinfo, host = found
    return urlunsplit(parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}"))


def _userinfo(url: str) -> tuple[SplitResult, str, str] | None:
    """(the URL's parts, its `user:password`, its host and port) when it has credentials."""
    try:
        parts = urlsplit(url)
    except ValueError:  # one urlsplit cannot read (an unclosed [ in its host)
        return None
    userinfo, at, host = parts.netloc.rpartition("@")
    return (parts, userinfo, host) if at else None
