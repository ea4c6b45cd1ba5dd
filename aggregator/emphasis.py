"""Make the converter's emphasis hold in CommonMark. A `**` (or `*`, `~~`) that closes after
punctuation must be followed by a space, punctuation or the line's end, and one that opens
before punctuation must follow one of those; else Hugo shows the asterisks. So `**记者：**正文`
becomes `**记者**：正文`: the punctuation on the inner edge moves outside the emphasis; a bold
link becomes a link with bold text; an emphasis that cannot hold is dropped, its text kept.

The converter is given OPEN just inside each emphasis element's start tag and CLOSE just inside
its end tag, so that each delimiter run it writes is known as an opener or a closer, and which
opener a closer ends."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

OPEN, CLOSE = "\ufdde", "\ufddf"
# the elements the converter writes as emphasis, by the delimiter it writes
EMPHASIS_TAGS = {
    **dict.fromkeys(("strong", "b", "mark"), "**"),
    **dict.fromkeys(("em", "i", "dfn", "var", "figcaption"), "*"),
    **dict.fromkeys(("del", "s", "strike"), "~~"),
}

# one token of inline text: a marker, a hard line break, an escape, an entity, a code span
# opener, a link's middle `](destination)`, a delimiter run, a bracket, or a run of other text
_TOKEN = re.compile(
    "[\ufdde\ufddf]"
    r"|\\\n|\\.|&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});"
    r"|`+|\]\((?:<[^<>\n]*>|(?:[^()\s]|\([^()\s]*\))*)(?:\s+\"(?:\\.|[^\"\\])*\")?\)"
    r"|\*+|~~|!?\[|\]|[^\\&`\]\[*~!\ufdde\ufddf]+|[\\&~!]"
)
_FENCED = re.compile(r"^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1[`~]*[ \t]*$", re.MULTILINE | re.DOTALL)
_DELIMITER = re.compile(r"\*+|~~")
_MARKERS = re.compile("[\ufdde\ufddf]")
_ENDING_BREAK = re.compile(r"(?<!\\)((?:\\\\)*)(?:\\\n[ \t]*)+(?=\n|\Z)")
_TICKS = re.compile("`+")
_TABLE = re.compile(r"\|.*(?:\n\|.*)*")
# a table after the first line: a regex led by text is found much faster than one led by `^`
_LATER_TABLE = re.compile(r"\n(\|.*(?:\n\|.*)*)")
_CELL_EDGE = re.compile(r"(?<!\\)\|")
_RULE = re.compile(r":?-+:?")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_REACH = 8  # tokens on either side of a pair that its flanking can depend on
_LOOK_BACK = 64  # tokens back to the opener of an emphasis that may need reading again
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def hold_emphasis(markdown: str) -> str:
    """The converter's Markdown with every emphasis able to open and close, the markers gone."""
    if OPEN not in markdown:
        return markdown
    if markdown.startswith("|") or "\n|" in markdown:
        markdown = _aligned_tables(markdown)
    if not _may_break(markdown):
        return markdown.replace(OPEN, "").replace(CLOSE, "")
    out: list[str] = []
    pos = 0
    for fenced in _FENCED.finditer(markdown):
        out.append(_hold(markdown[pos : fenced.start()]))
        out.append(_MARKERS.sub("", fenced.group()))
        pos = fenced.end()
    out.append(_hold(markdown[pos:]))
    return "".join(out)


def _may_break(text: str) -> bool:
    """Whether an emphasis may not hold (a cheap, cautious look at each pair of markers): one
    inside another or around a blank line, one with a space or nothing on an inner edge, an
    opener between a letter and no letter, a closer between no letter and a letter or an
    opener."""
    opened = text.find(OPEN)
    while opened >= 0:
        closed = text.find(CLOSE, opened)
        following = text.find(OPEN, opened + 1)
        if closed < 0 or 0 <= following < closed:
            return True
        if text.find("\n", opened, closed) >= 0 and _BLANK_LINE.search(text, opened, closed):
            return True
        first, last = text[opened + 1], text[closed - 1]
        if first == CLOSE or first.isspace() or last.isspace():
            return True
        start, end = opened, closed + 1
        while start and text[start - 1] in "*~":
            start -= 1
        while end < len(text) and text[end] in "*~":
            end += 1
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if after == OPEN or (
            not (first.isalnum() or _is_plain_edge(before))
            or not (last.isalnum() or _is_plain_edge(after))
        ):
            return True
        opened = following
    return False


def _is_plain_edge(char: str) -> bool:
    """Whether a delimiter run beside this character flanks as it would beside a space."""
    return char.isspace() or char in _ASCII_PUNCTUATION


def _aligned_tables(markdown: str) -> str:
    """The Markdown with each table (a run of lines that start with `|`) aligned."""
    head = ""
    if first := _TABLE.match(markdown):
        head, markdown = _align(first.group()), markdown[first.end() :]
    return head + _LATER_TABLE.sub(lambda table: "\n" + _align(table.group(1)), markdown)


def _align(table: str) -> str:
    """A table with its columns as wide as their widest text without the markers, which the
    converter counted."""
    if OPEN not in table and CLOSE not in table:
        return table
    lines = table.split("\n")
    rows = [[cell.strip(" ") for cell in _CELL_EDGE.split(line)[1:-1]] for line in lines]
    if len({len(row) for row in rows}) != 1:
        return table
    rules = [all(_RULE.fullmatch(cell) for cell in row) for row in rows]
    widths = [
        max([3, *(_width(row[column]) for row, rule in zip(rows, rules, strict=True) if not rule)])
        for column in range(len(rows[0]))
    ]
    out = []
    for row, rule in zip(rows, rules, strict=True):
        if rule:
            cells = [_rule(cell, width) for cell, width in zip(row, widths, strict=True)]
        else:
            cells = [cell + " " * (w - _width(cell)) for cell, w in zip(row, widths, strict=True)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _width(cell: str) -> int:
    return len(cell) - len(_MARKERS.findall(cell))


def _rule(cell: str, width: int) -> str:
    left, right = cell.startswith(":"), cell.endswith(":")
    return (":" if left else "") + "-" * (width - left - right) + (":" if right else "")


def _hold(text: str) -> str:
    if OPEN not in text:
        return _MARKERS.sub("", text)
    tokens = _mend_all(_split_runs(_tokens(text)))
    kept: list[str] = []
    for token in tokens:
        if token in (OPEN, CLOSE):
            continue
        if kept and _is_code_span(token) and _is_code_span(kept[-1]):  # one would end the other
            token = _code_span(_code_content(kept.pop()) + _code_content(token))
        kept.append(token)
    text = "".join(kept)
    # a line break moved out of an emphasis may now end a paragraph, where it shows as `\`
    return _ENDING_BREAK.sub(r"\1\n", text) if "\\\n" in text else text


def _tokens(text: str) -> list[str]:
    """The text as tokens, a code span (a backtick run to the next run of its length) as one,
    without the markers inside it."""
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        assert match  # the last alternatives take any character
        token, pos = match.group(), match.end()
        if token[0] == "`" and (end := _closing_run(text, token, pos)) >= 0:
            token, pos = _MARKERS.sub("", text[match.start() : end]), end
        tokens.append(token)
    return tokens


def _closing_run(text: str, run: str, pos: int) -> int:
    """Where the backtick run that closes a code span opened by `run` ends, else -1."""
    while (found := text.find(run, pos)) >= 0:
        end = found + len(run)
        if text[found - 1] != "`" and not text.startswith("`", end):
            return end
        pos = end
        while text.startswith("`", pos):
            pos += 1
    return -1


def _split_runs(tokens: list[str]) -> list[str]:
    """The tokens with a run that closes one emphasis and opens the next (`</b><i>` gives
    `***`) as two delimiter tokens."""
    out: list[str] = []
    openers: list[str] = []
    for index, token in enumerate(tokens):
        if _DELIMITER.fullmatch(token):
            closes = index > 0 and tokens[index - 1] == CLOSE and openers
            opens = _is_opener(tokens, index)
            if closes and opens and token != openers[-1] and token.startswith(openers[-1]):
                closer = openers.pop()
                out.append(closer)
                token = token[len(closer) :]
            elif closes and token == openers[-1]:
                openers.pop()
            if opens:
                openers.append(token)
        out.append(token)
    return out


def _is_code_span(token: str) -> bool:
    return token[0] == "`" and token.strip("`") != ""


def _code_content(span: str) -> str:
    fence = len(span) - len(span.lstrip("`"))
    content = span[fence:-fence]
    if len(content) > 2 and content[0] == content[-1] == " " and content.strip(" "):
        return content[1:-1]
    return content


def _code_span(content: str) -> str:
    fence = "`" * (max((len(run) for run in _TICKS.findall(content)), default=0) + 1)
    pad = " " if content[:1] in ("`", " ") or content[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{content}{pad}{fence}"


def _mend_all(tokens: list[str]) -> list[str]:
    """The tokens with every emphasis that cannot open or close mended, inner ones first. A
    delimiter run followed by OPEN opens, one after CLOSE closes the latest one open; a mended
    pair's tokens are replaced in place, and the pass goes on from just before them."""
    openers: list[int] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if _DELIMITER.fullmatch(token):
            if _is_opener(tokens, index):
                openers.append(index)
            elif index and tokens[index - 1] == CLOSE and openers and tokens[openers[-1]] == token:
                start = openers.pop()
                mended: list[str] | None = (
                    tokens[start + 2 : index - 1]  # dropped: one run cannot close and open
                    if _runs_into_opener(tokens, index) or _closes_outer(tokens, openers, start)
                    else _mend(tokens, start, index)
                )
                if mended is not None:
                    # the pairs inside and just before this one may no longer hold: read again
                    tokens[start : index + 1] = mended
                    index = _reread_from(tokens, start) - 1
                    openers = [opener for opener in openers if opener <= index]
        index += 1
    return tokens


def _reread_from(tokens: list[str], start: int) -> int:
    """Where to read again from once the tokens from `start` on have changed: the opener of an
    emphasis that closes just before them (its closer may now meet what follows), when it is
    near, else a few tokens back."""
    closer = start - 1
    if closer > 0 and tokens[closer - 1] == CLOSE and _DELIMITER.fullmatch(tokens[closer]):
        depth = 0
        for index in range(closer - 1, max(0, closer - _LOOK_BACK), -1):
            depth += 1 if tokens[index] == CLOSE else -1 if tokens[index] == OPEN else 0
            if depth == 0:
                return index - 1
    return max(0, start - _REACH)


def _closes_outer(tokens: list[str], openers: list[int], start: int) -> bool:
    """Whether the opener tokens[start] could close an emphasis of its character that is open
    around it, as CommonMark would make it do."""
    mark = tokens[start][0]
    return _closes(*_around(tokens, start)) and any(tokens[i][0] == mark for i in openers)


def _is_opener(tokens: list[str], index: int) -> bool:
    return index + 1 < len(tokens) and tokens[index + 1] == OPEN


def _runs_into_opener(tokens: list[str], index: int) -> bool:
    """Whether the closer tokens[index] meets an opener in one delimiter run."""
    mark = tokens[index][0]
    for later in range(index + 1, len(tokens)):
        token = tokens[later]
        if token in (OPEN, CLOSE):
            continue
        if token[0] != mark or not _DELIMITER.fullmatch(token):
            return False
        if _is_opener(tokens, later):
            return True
    return False


def _mend(tokens: list[str], start: int, end: int) -> list[str] | None:
    """What stands for tokens[start : end + 1] with the punctuation (and space) that keeps
    tokens[start] from opening or tokens[end] from closing moved outside the pair, the pair
    moved into the link text when a link is all it holds, or the pair dropped when it holds
    nothing else or still cannot hold; None when the pair holds as it is."""
    opener, closer = tokens[start : start + 2], tokens[end - 1 : end + 1]
    inner = tokens[start + 2 : end - 1]
    if any(_BLANK_LINE.search(token) for token in inner):
        return _unwrap_blocks(opener[0], inner)
    if _holds(tokens, start, end):
        return None
    if inner and inner[0] == "[" and _take_link(inner[:], first=True) == "".join(inner):
        return ["[", *opener, *inner[1:-1], *closer, inner[-1]]
    # the pair's neighbours, as far as a delimiter run can reach (markers and nested runs)
    head = tokens[max(0, start - _REACH) : start]
    tail = tokens[end + 1 : end + 1 + _REACH]
    lead: list[str] = []
    trail: list[str] = []

    def candidate() -> tuple[list[str], int, int]:
        before = [*head, *lead]
        pair = [*opener, *inner, *closer]
        return [*before, *pair, *trail, *tail], len(before), len(before) + len(pair) - 1

    while inner and not _opens(*_around(*candidate()[:2])):
        if not (unit := _take(inner, first=True)):
            break
        lead.append(unit)
    while inner:
        window, _, new_end = candidate()
        if _closes(*_around(window, new_end)) or not (unit := _take(inner, first=False)):
            break
        trail.insert(0, unit)
    if inner and _holds(*candidate()):
        return [*lead, *opener, *inner, *closer, *trail]
    return [*lead, *inner, *trail]


def _holds(tokens: list[str], start: int, end: int) -> bool:
    """Whether tokens[start] can open and tokens[end] can close in CommonMark."""
    return _opens(*_around(tokens, start)) and _closes(*_around(tokens, end))


def _unwrap_blocks(run: str, inner: list[str]) -> list[str]:
    """An emphasis around paragraphs without its delimiters: the converter writes one pair
    around the paragraphs (`**OPEN**`, `**CLOSE**`) and one inside each."""
    if inner and inner[0] == run:
        inner = inner[1:]
    if inner and inner[-1] == run:
        inner = inner[:-1]
    return inner


def _take(inner: list[str], first: bool) -> str:
    """Take the space or punctuation on one edge of the inner tokens off them: what ends (or
    starts) a run of text, an escape, an entity, a code span or a whole link; "" when that
    edge is neither, or another emphasis."""
    index = 0 if first else len(inner) - 1
    token = inner[index]
    if token in (OPEN, CLOSE) or _DELIMITER.fullmatch(token):
        return ""
    if not _is_space_or_punctuation(token[0] if first else token[-1]):
        return ""
    if token[0] not in "\\&`]![":  # text: split off its edge
        marks = "".join(c for c in token if _is_space_or_punctuation(c))
        rest = token.lstrip(marks) if first else token.rstrip(marks)
        if rest:
            inner[index] = rest
            return token[: len(token) - len(rest)] if first else token[len(rest) :]
        return inner.pop(index)
    if token in ("[", "![") or token.startswith("]("):
        return _take_link(inner, first)
    return inner.pop(index)


def _take_link(inner: list[str], first: bool) -> str:
    """Take the link (or image) on one edge of the inner tokens off them, "" when its other
    end lies outside them."""
    depth = 0
    order = range(len(inner)) if first else range(len(inner) - 1, -1, -1)
    for index in order:
        token = inner[index]
        if token.endswith("["):
            depth += 1 if first else -1
        elif token.startswith("]"):
            depth += -1 if first else 1
        if depth == 0:
            cut = slice(0, index + 1) if first else slice(index, len(inner))
            span = "".join(inner[cut])
            del inner[cut]
            return span
    return ""


def _around(tokens: list[str], index: int) -> tuple[str, str]:
    """The characters before and after the delimiter run that tokens[index] is part of:
    Markdown sees one run where delimiters of one character meet once the markers are gone."""
    mark = tokens[index][0]

    def part_of_run(token: str) -> bool:
        return token in (OPEN, CLOSE) or (token[0] == mark and bool(_DELIMITER.fullmatch(token)))

    before, after = index - 1, index + 1
    while before >= 0 and part_of_run(tokens[before]):
        before -= 1
    while after < len(tokens) and part_of_run(tokens[after]):
        after += 1
    return (
        tokens[before][-1] if before >= 0 else " ",
        tokens[after][0] if after < len(tokens) else " ",
    )


def _opens(before: str, first: str) -> bool:
    """Whether a delimiter run between these characters is left-flanking."""
    return not _is_space(first) and (
        not _is_punctuation(first) or _is_space(before) or _is_punctuation(before)
    )


def _closes(last: str, after: str) -> bool:
    """Whether a delimiter run between these characters is right-flanking."""
    return not _is_space(last) and (
        not _is_punctuation(last) or _is_space(after) or _is_punctuation(after)
    )


@lru_cache(maxsize=4096)
def _is_punctuation(char: str) -> bool:
    """CommonMark's Unicode punctuation: categories P and S."""
    return unicodedata.category(char)[0] in "PS"


@lru_cache(maxsize=4096)
def _is_space(char: str) -> bool:
    """CommonMark's Unicode whitespace."""
    return char in " \t\n\f\r" or unicodedata.category(char) == "Zs"


def _is_space_or_punctuation(char: str) -> bool:
    return _is_space(char) or _is_punctuation(char)
