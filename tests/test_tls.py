"""The TLS context: loaded once for the process (the CA bundle takes about 50 ms), shared by
every transport, the guarded one included, and loaded again after a failed load."""

from __future__ import annotations

import ssl

import httpx
import pytest

from aggregator import tls
from aggregator.netguard import address_kind, make_transport


def test_every_transport_shares_the_one_context() -> None:
    tls.preload()
    shared = tls.context()
    assert isinstance(shared, ssl.SSLContext) and shared.verify_mode == ssl.CERT_REQUIRED
    plain = make_transport(httpx.Limits(), None)
    guarded = make_transport(httpx.Limits(), address_kind)
    assert plain._pool._ssl_context is shared
    assert guarded._pool._ssl_context is shared
    assert tls.context() is shared


def test_a_failed_load_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**options: object) -> ssl.SSLContext:
        raise ssl.SSLError("no CA bundle")

    monkeypatch.setattr(tls, "_loading", None)
    monkeypatch.setattr(httpx, "create_ssl_context", broken)
    with pytest.raises(ssl.SSLError):
        tls.context()
    monkeypatch.undo()
    monkeypatch.setattr(tls, "_loading", None)
    assert isinstance(tls.context(), ssl.SSLContext)
