"""RSS/Atom/JSON Feed aggregator: fetch sources, write Hugo Markdown, publish per-tag Atom."""

__version__ = "0.1.0"
