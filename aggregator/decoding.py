"""Content-Encoding (gzip, deflate, br) decoded in bounded pieces, so a small compressed bomb never
expands in memory past the body limit."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import brotli  # type: ignore[import-untyped]

from aggregator.errors import AggregatorError

PIECE = 256 * 1024  # largest decoded piece produced from one step
GZIP_MAGIC = b"\x1f\x8b"


class DecodeError(AggregatorError):
    """The body's Content-Encoding is unknown or its bytes do not decode."""


class Decoder:
    """Identity: bytes pass through. Subclasses decode; `feed` and `flush` yield pieces."""

    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def flush(self) -> Iterator[bytes]:
        yield from ()


class ZlibDecoder(Decoder):
    """gzip (each of its members in turn, RFC 1952 2.2), or deflate: zlib's format as RFC 9110
    asks, or raw as it is often sent. A stream's first two bytes tell which (a zlib header:
    compression method 8, a multiple of 31), and whether bytes after a gzip member start
    another one; they are held until both have come, so that how the body is cut into chunks
    never changes the result."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.engine: zlib._Decompress | None = None  # the current stream's
        self.head = b""  # the next stream's first byte, until its second comes
        self.ended = False  # what followed the last stream was not one: ignored

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            while data and not self.ended:
                if self.engine is None or self.engine.eof:
                    data = self._begin(data)
                    if not data:
                        return
                assert self.engine is not None
                piece = self.engine.decompress(data, PIECE)
                data = self.engine.unused_data if self.engine.eof else self.engine.unconsumed_tail
                if piece:
                    yield piece
        except zlib.error as exc:
            raise DecodeError(f"broken {self.name} encoding ({exc})") from None

    def _begin(self, data: bytes) -> bytes:
        """The next stream's engine, once its first two bytes are here; the bytes for it (none
        while they are not, or when they follow a stream without starting a gzip member: such
        a tail, padding or junk, is ignored as before)."""
        head, self.head = self.head + data, b""
        if len(head) < 2:
            self.head = head
            return b""
        if self.engine is not None and (self.name != "gzip" or head[:2] != GZIP_MAGIC):
            self.ended = True
            return b""
        self.engine = zlib.decompressobj(self._wbits(head))
        return head

    def _wbits(self, head: bytes) -> int:
        """zlib's window bits for a stream opening with `head`: no raw deflate stream opens like
        a zlib header (it would take a stored block with its padding bits set)."""
        if self.name == "gzip":
            return zlib.MAX_WBITS | 16
        if head[0] & 0x0F == 8 and int.from_bytes(head[:2], "big") % 31 == 0:
            return zlib.MAX_WBITS
        return -zlib.MAX_WBITS

    def flush(self) -> Iterator[bytes]:
        if self.engine is None:
            if self.head:  # one byte in all
                raise DecodeError(f"broken {self.name} encoding (truncated)")
            return
        try:
            rest = self.engine.flush()
        except zlib.error as exc:
            raise DecodeError(f"broken {self.name} encoding ({exc})") from None
        if not self.engine.eof:  # cut short: its end (and checksum) missing
            raise DecodeError(f"broken {self.name} encoding (truncated)")
        if rest:
            yield rest


class BrotliDecoder(Decoder):
    def __init__(self) -> None:
        self.engine = brotli.Decompressor()
        self.started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.started = self.started or bool(data)
        try:
            piece = self.engine.process(data, output_buffer_limit=PIECE)
            while piece:
                yield piece
                if self.engine.is_finished():
                    return
                piece = self.engine.process(b"", output_buffer_limit=PIECE)
        except brotli.error as exc:
            raise DecodeError(f"broken br encoding ({exc})") from None

    def flush(self) -> Iterator[bytes]:
        if self.started and not self.engine.is_finished():
            raise DecodeError("broken br encoding (truncated)")
        yield from ()


def decoder_for(content_encoding: str) -> Decoder:
    """The decoder for a Content-Encoding header value; raises DecodeError when unsupported."""
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return Decoder()
    if len(codings) == 1:
        coding = codings[0]
        if coding in ("gzip", "x-gzip"):
            return ZlibDecoder("gzip")
        if coding == "deflate":
            return ZlibDecoder("deflate")
        if coding == "br":
            return BrotliDecoder()
    raise DecodeError(f"unsupported Content-Encoding {content_encoding!r}")
