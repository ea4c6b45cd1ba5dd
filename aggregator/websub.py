"""WebSub publisher pings: after a publish that changed feeds, tell the hub which topic URLs
changed (`hub.mode=publish`, `hub.url` repeated). A hub that fails is reported, never fatal."""

from __future__ import annotations

from collections.abc import Sequence

from aggregator import __version__, defaults


def ping_hub(hub: str, urls: Sequence[str], timeout: float = defaults.HUB_TIMEOUT) -> list[str]:
    """Notify `hub` that `urls` changed; the problems met, as one-line reports."""
    import httpx  # only publishes that changed something with a hub configured need it

    headers = {"User-Agent": f"aggregator/{__version__}"}
    try:
        with httpx.Client(timeout=timeout, trust_env=False, headers=headers) as client:
            for start in range(0, len(urls), defaults.HUB_BATCH):
                batch = list(urls[start : start + defaults.HUB_BATCH])
                response = client.post(hub, data={"hub.mode": "publish", "hub.url": batch})
                if not response.is_success:
                    return [f"websub hub {hub}: answered HTTP {response.status_code}"]
    except httpx.HTTPError as exc:
        return [f"websub hub {hub}: {type(exc).__name__}: {exc or 'no response'}"]
    return []
