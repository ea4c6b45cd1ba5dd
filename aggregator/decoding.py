"""Content-Encoding (gzip, deflate, br) decoded in bounded pieces, so a small compressed bomb never
expands in memory past the body limit."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import brotli  # type: ignore[import-untyped]

from aggregator.errors import AggregatorError

PIECE = 256 * 1024  # largest decoded piece produced from one step


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
    def __init__(self, name: str, wbits: int) -> None:
        self.name = name
        self.wbits = wbits
        self.engine = zlib.decompressobj(wbits)
        self.started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            while data and not self.engine.eof:
                piece = self._step(data)
                data = self.engine.unconsumed_tail
                if piece:
                    yield piece
        except zlib.error as exc:
            raise DecodeError(f"broken {self.name} encoding ({exc})") from None

    def _step(self, data: bytes) -> bytes:
        try:
            return self.engine.decompress(data, PIECE)
        except zlib.error:
            if self.name != "deflate" or self.started:
                raise
            # "deflate" is often sent raw, without the zlib header the RFC asks for
            self.engine = zlib.decompressobj(-zlib.MAX_WBITS)
            return self.engine.decompress(data, PIECE)
        finally:
            self.started = True

    def flush(self) -> Iterator[bytes]:
        try:
            rest = self.engine.flush()
        except zlib.error as exc:
            raise DecodeError(f"broken {self.name} encoding ({exc})") from None
        if self.started and not self.engine.eof:  # cut short: its end (and checksum) missing
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
            return ZlibDecoder("gzip", zlib.MAX_WBITS | 16)
        if coding == "deflate":
            return ZlibDecoder("deflate", zlib.MAX_WBITS)
        if coding == "br":
            return BrotliDecoder()
    raise DecodeError(f"unsupported Content-Encoding {content_encoding!r}")
