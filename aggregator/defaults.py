"""Named defaults and limits, in one place; config.toml overrides them."""

from __future__ import annotations

STATE_DB_NAME = "aggregator-state.sqlite"
LOCK_NAME = "aggregator.lock"
DAEMON_LOCK_NAME = "aggregator-run.lock"  # held by `aggregator run` while it lives

SITE_TITLE = "Feed digest"
SITE_BASE_URL = "http://localhost:8080/"
SITE_TIMEZONE = "UTC"
FEEDS_DIR = "feeds"
OUTPUT_DIR = "output"
ENTRIES_PER_FEED = 50

LANG = "en"
SUMMARY_LENGTH = 50
SIDEBAR = "right"
WIDGETS = ("search", "recent", "taglist")

FETCH_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
MAX_BYTES = 15 * 1024 * 1024
MAX_ENTRIES_READ = 1000  # entries taken from one document, the newest (bounds one feed's work)
CONCURRENCY = 16
PER_HOST = 2
MAX_REDIRECTS = 5
MOVED_CONFIRMATIONS = 3  # a permanent redirect seen this many runs in a row is then followed
RETRY_AFTER_CAP = 7 * 86400.0  # longest Retry-After honoured, seconds
FRESHNESS_CAP = 86400.0  # longest interval Cache-Control, Expires or <ttl> may impose
BACKOFF_BASE = 300.0  # seconds after the first failure (half of it random), doubling after each
BACKOFF_CAP = 86400.0  # a failing feed is still tried at least once a day
GONE_RETRY = 7 * 86400.0  # a feed that answered 410 Gone is tried again weekly
ENTITY_EXPANSION_LIMIT = 1024 * 1024  # bytes a document's own entities may expand to
ATTRIBUTE_LIMIT = 256  # attributes one element may carry (feedparser is quadratic in them)

SCHEDULE_INTERVAL = "30m"

LOCK_WAIT = 10.0  # seconds a one-shot command waits for the writer lock before exit code 3
LOCK_POLL = 0.5  # seconds between the daemon's tries for the writer lock
BATCH_WINDOW = 0.5  # seconds the daemon waits for more due feeds to join a cycle
MISFIRE_GRACE = 300  # seconds a late scheduled run may start after its time
STOP_POLL = 0.1  # seconds between checks for a stop request while fetching

HUB_TIMEOUT = 10.0  # seconds for one WebSub ping to the hub
HUB_BATCH = 100  # changed feed URLs per ping (hub.url repeated)
PREPARED_PER_WORKER = 4  # feeds in each worker's hands (or done, awaiting the store) at most
PARALLEL_MIN_FEEDS = 4  # feeds to parse in a cycle before worker processes pay off
PUBLISH_WRITERS = 8  # threads writing published files (their fsyncs overlap)
PUBLISH_BACKLOG = 64  # feeds rendered ahead of the writers, at most
PUBLISH_ITEMS_KEPT = 1000  # entries a publish keeps built for the next feeds that carry them
PARALLEL_MIN_PUBLISH = 16  # feeds to build before a publish shares them with worker processes
SERVE_HOST = "127.0.0.1"  # `aggregator serve` listens here only
MAX_PORT = 65535
SERVE_PORT = 8080  # when [site] base_url names no local port

MAX_ENTRY_CATEGORIES = 20  # an entry's own categories made tags, at most (each tag is a feed)
MAX_HTML_NESTING = 200  # deeper entry HTML is kept as its text (parsing it is quadratic)
MAX_TEXT_PIECES = 20_000  # `&` and stray `<` in one text node, past which HTML is kept as text
