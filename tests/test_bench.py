"""The benchmark stays runnable: `python -m bench.run --quick` on a tiny N prints every named
figure and target line and writes the same figures as JSON. Not a timed test: it checks what
was counted (entries, files written, bodies served), never how fast."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.report import Results, Settings
from bench.run import QUICK, compile_package
from bench.synth import ENTRIES, feed_xml
from tests.helpers import REPO


def test_synthetic_feeds_are_deterministic_news() -> None:
    chinese, latin = feed_xml(0), feed_xml(1)
    assert feed_xml(0) == chinese
    for body in (chinese, latin):
        assert 80_000 < len(body) < 100_000
        assert body.count(b"<item>") == ENTRIES
        assert b"<category>" in body and b"<img " in body
    assert re.search("[\u4e00-\u9fff]{8}", chinese.decode())
    newer = feed_xml(1, version=1)
    assert b"news1-50</guid>" in newer and b"news1-0</guid>" not in newer
    assert b"news1-0</guid>" in latin


def test_the_bench_measures_a_byte_compiled_package() -> None:
    package = REPO / "aggregator"
    for cache in package.rglob("__pycache__"):
        shutil.rmtree(cache)
    compile_package()
    for source in package.rglob("*.py"):
        assert Path(importlib.util.cache_from_source(str(source))).is_file(), source


def test_quick_benchmark_prints_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    figures = data["figures"]
    sizes = QUICK["feeds"]
    expected = {"ours.startup", "ours.publish.build", "ours.soak"}
    expected |= {f"ours.publish.{way}.{n}" for way in ("cli", "step") for n in ("full", "one")}
    for n in sizes:
        for who in ("floor", "reader", "ours"):
            expected |= {f"{who}.cold.{n}", f"{who}.warm.{n}"}
    assert set(figures) == expected
    for key in expected:
        assert re.search(rf"^{re.escape(key)}\s+\d+\.\d+\s", proc.stdout, re.MULTILINE), key

    for n in sizes:
        for who in ("floor", "reader", "ours"):
            assert figures[f"{who}.cold.{n}"]["counts"]["entries"] == n * ENTRIES
        warm = figures[f"ours.warm.{n}"]
        assert warm["counts"] == {"files_written": 0, "requests": n, "bodies_served": 0}
        assert warm["x_reader"] > 0 and warm["x_floor"] > 0
        assert figures[f"ours.cold.{n}"]["peak_mb"] > 10
    build = figures["ours.publish.build"]["counts"]
    assert build == {"entries": QUICK["publish_entries"], "tags": QUICK["publish_tags"]}
    for way in ("cli", "step"):
        assert figures[f"ours.publish.{way}.full"]["counts"]["feeds"] == QUICK["publish_tags"] + 1
        assert figures[f"ours.publish.{way}.one"]["counts"]["files_written"] > 0
    assert len(data["soak"]) == QUICK["soak_cycles"]
    assert all(sample["fds"] > 0 and sample["memory_mb"] > 10 for sample in data["soak"])

    targets = data["targets"]
    assert len(targets) == 2 + 5 * len(sizes) + (len(sizes) - 1) + 2
    for target in targets:
        verdict = "PASS" if target["passed"] else "FAIL"
        assert f"{verdict} {target['name']}: " in proc.stdout


def test_scaling_pairs_the_runs_of_each_repeat() -> None:
    """Runs at two sizes taken side by side in each repeat are compared run by run: a slow
    repeat slows both, and the median of their ratios keeps what the sizes alone change."""
    settings = Settings((2, 10), 3, 0, 0, 0, 0, ("fetch",), False)
    results = Results(settings=settings, machine={})
    for small, big in ((1.0, 5.0), (2.0, 9.0), (4.0, 21.0)):  # the machine slows each repeat
        results.figure("ours.cold.2", "ours cold").add(small, 1.0)
        results.figure("ours.cold.10", "ours cold").add(big, 1.0)
    assert results.paired_ratio("ours.cold.10", "ours.cold.2") == 5.0
    assert results.ratio("ours.cold.10", "ours.cold.2") == 4.5
