"""Figures, their ratios to reader and to the floor, the targets, as a table and as JSON."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.synth import ENTRIES

PEERS = ("reader", "floor")
COLD_VS_READER = 0.25
WARM_VS_COLD = 0.10
PEAK_MB = 200.0
SCALING_SLACK = 1.1  # 5.5 x the time for 5 x the feeds
PUBLISH_ONE_VS_FULL = 0.05
RUNS_SHOWN = 3


@dataclass
class Figure:
    """One named workload: the seconds of each run, the peak memory, what it counted."""

    key: str
    label: str
    runs: list[float] = field(default_factory=list)
    peak_mb: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return statistics.median(self.runs)

    def add(self, seconds: float, peak_mb: float, **counts: int) -> None:
        self.runs.append(seconds)
        self.peak_mb = max(self.peak_mb, peak_mb)
        for name, value in counts.items():
            self.counts[name] = max(self.counts.get(name, value), value)


@dataclass(frozen=True)
class Target:
    name: str
    value: float
    limit: float
    unit: str

    @property
    def passed(self) -> bool:
        return self.value <= self.limit


@dataclass(frozen=True)
class Settings:
    feeds: tuple[int, ...]
    repeat: int
    publish_entries: int
    publish_tags: int
    soak_feeds: int
    soak_cycles: int
    workloads: tuple[str, ...]
    soak_daemon: bool


@dataclass
class Results:
    settings: Settings
    machine: dict[str, Any]
    figures: dict[str, Figure] = field(default_factory=dict)
    soak: list[dict[str, float]] = field(default_factory=list)

    def figure(self, key: str, label: str) -> Figure:
        return self.figures.setdefault(key, Figure(key, label))

    def ratio(self, key: str, other: str) -> float | None:
        if key not in self.figures or other not in self.figures:
            return None
        return self.figures[key].seconds / max(self.figures[other].seconds, 1e-9)

    def paired_ratio(self, key: str, other: str) -> float | None:
        """The median of the run-by-run ratios of two figures measured in the same repeats: a
        machine whose speed drifts from one repeat to the next moves it less than a ratio of
        medians (that, when the run counts differ)."""
        if key not in self.figures or other not in self.figures:
            return None
        runs, others = self.figures[key].runs, self.figures[other].runs
        if len(runs) != len(others):
            return self.ratio(key, other)
        return statistics.median(a / max(b, 1e-9) for a, b in zip(runs, others, strict=True))

    def peer_key(self, key: str, peer: str) -> str | None:
        """`ours.cold.200` -> `reader.cold.200`, when that figure exists."""
        owner, _, rest = key.partition(".")
        other = f"{peer}.{rest}"
        return other if owner == "ours" and other in self.figures else None

    def targets(self) -> list[Target]:
        feeds = self.settings.feeds if "fetch" in self.settings.workloads else ()
        out: list[Target] = []
        add = out.append
        if feeds:
            small = feeds[0]
            add(self._vs_reader(small))
            peak = self.figures[f"ours.cold.{small}"].peak_mb
            add(Target(f"peak memory cold {small} <= {PEAK_MB:.0f} MB", peak, PEAK_MB, "MB"))
        for n in feeds:
            cold, warm = self.figures[f"ours.cold.{n}"], self.figures[f"ours.warm.{n}"]
            name = f"warm {n} <= {WARM_VS_COLD:g} x cold {n}"
            add(Target(name, warm.seconds / cold.seconds, WARM_VS_COLD, "x"))
            add(Target(f"warm {n} writes no file", warm.counts["files_written"], 0, "files"))
            asked = warm.counts["requests"]
            add(Target(f"warm {n} asks for every feed", abs(asked - n), 0, "off"))
            for who in ("ours", "reader"):
                got = self.figures[f"{who}.cold.{n}"].counts["entries"]
                want = n * ENTRIES
                add(Target(f"{who} cold {n} stores {want} entries", abs(got - want), 0, "off"))
        for big in feeds[1:]:
            factor = SCALING_SLACK * big / feeds[0]
            ratio = self.paired_ratio(f"ours.cold.{big}", f"ours.cold.{feeds[0]}") or 0.0
            add(Target(f"cold {big} <= {factor:.1f} x cold {feeds[0]}", ratio, factor, "x"))
        for way, what in (("step", "publish step"), ("cli", "aggregator publish")):
            one = self.ratio(f"ours.publish.{way}.one", f"ours.publish.{way}.full")
            if one is not None:
                name = f"{what} after one new entry <= {PUBLISH_ONE_VS_FULL:.0%} of full"
                add(Target(name, one, PUBLISH_ONE_VS_FULL, "x"))
        return out

    def _vs_reader(self, feeds: int) -> Target:
        ratio = self.ratio(f"ours.cold.{feeds}", f"reader.cold.{feeds}")
        assert ratio is not None
        return Target(f"cold {feeds} <= {COLD_VS_READER:g} x reader", ratio, COLD_VS_READER, "x")

    def to_json(self) -> dict[str, Any]:
        figures = {}
        for key, fig in self.figures.items():
            entry = asdict(fig)
            entry["seconds"] = fig.seconds
            for peer in PEERS:
                other = self.peer_key(key, peer)
                entry[f"x_{peer}"] = self.ratio(key, other) if other else None
            figures[key] = entry
        return {
            "machine": self.machine,
            "settings": asdict(self.settings),
            "figures": figures,
            "soak": self.soak,
            "targets": [asdict(t) | {"passed": t.passed} for t in self.targets()],
        }


def _runs(fig: Figure) -> str:
    shown = " ".join(f"{s:.2f}" for s in fig.runs[:RUNS_SHOWN])
    return shown + (" ..." if len(fig.runs) > RUNS_SHOWN else "")


def _counts(fig: Figure) -> str:
    return " ".join(f"{k}={v}" for k, v in fig.counts.items())


def render(results: Results, write: Callable[[str], None] = print) -> None:
    """The human-readable report: one row a figure, then the soak, then the targets."""
    machine, settings = results.machine, results.settings
    write(
        f"aggregator {machine['aggregator']} ({machine['commit']}) vs reader "
        f"{machine['reader']} on {machine['cpus']} CPUs, Python {machine['python']}; "
        f"median of {settings.repeat} run(s)"
    )
    header = f"{'figure':<22}{'median s':>10}  {'runs s':<22}{'peak MB':>9}  "
    write(header + f"{'x reader':>9}{'x floor':>9}  counts")
    for key, fig in results.figures.items():
        ratios = ""
        for peer in PEERS:
            other = results.peer_key(key, peer)
            value = results.ratio(key, other) if other else None
            ratios += f"{value:>9.3f}" if value is not None else f"{'':>9}"
        write(
            f"{key:<22}{fig.seconds:>10.3f}  {_runs(fig):<22}{fig.peak_mb:>9.1f}  "
            f"{ratios}  {_counts(fig)}"
        )
    if results.soak:
        first, last = results.soak[0], results.soak[-1]
        write(
            f"soak: {len(results.soak)} cycles; memory MB first {first['memory_mb']:.1f} last "
            f"{last['memory_mb']:.1f} max {max(s['memory_mb'] for s in results.soak):.1f}; "
            f"open fds first {first['fds']:.0f} last {last['fds']:.0f} max "
            f"{max(s['fds'] for s in results.soak):.0f}"
        )
    for target in results.targets():
        verdict = "PASS" if target.passed else "FAIL"
        write(f"{verdict} {target.name}: {target.value:.3f} {target.unit} (limit {target.limit:g})")


def write_json(results: Results, path: Path) -> None:
    path.write_text(json.dumps(results.to_json(), indent=2, ensure_ascii=False) + "\n")
