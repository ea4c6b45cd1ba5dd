"""The state database found damaged: any statement, and any row of a result, that meets a
broken page reports it as StateDamagedError, naming the file and what to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from aggregator.errors import StateDamagedError
from aggregator.state import State


def page_of(database: Path, table: str, *, last_leaf: bool = False) -> int:
    """The number of the root page of `table` (or, with `last_leaf`, of the leaf its root
    points to last, which a scan reaches last)."""
    with sqlite3.connect(database) as db:
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    if not last_leaf:
        return int(root[0])
    with database.open("rb") as file:
        file.seek((root[0] - 1) * size)
        header = file.read(12)
    assert header[0] == 0x05, "the root is not an interior page: the table needs more rows"
    return int.from_bytes(header[8:12], "big")  # its right-most child


def damage(database: Path, page: int) -> None:
    """Overwrite one page of the database with 0xFF bytes."""
    with sqlite3.connect(database) as db:
        size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with database.open("r+b") as file:
        file.seek((page - 1) * size)
        file.write(b"\xff" * size)


def test_a_damaged_page_met_at_a_later_row_is_named_with_what_to_do(tmp_path: Path) -> None:
    """SQLite reads the rows of a result as they are asked for: a broken page past the first
    one is met while fetching them, not when the statement runs."""
    database = tmp_path / "aggregator-state.sqlite"
    with State(database) as state, state.transaction():
        for n in range(500):
            state.save_folder_digest(f"folder-{n:03}", "0" * 200)
    damage(database, page_of(database, "entry_folders", last_leaf=True))
    expected = (
        f"cannot use the state database {database}: database disk image is malformed; "
        "move it away and the next fetch rebuilds it from feeds/"
    )
    with State(database) as state:
        rows = state.db.execute("SELECT folder, digest FROM entry_folders")  # its first are sound
        with pytest.raises(StateDamagedError) as by_row:
            list(rows)
        with pytest.raises(StateDamagedError) as all_rows:
            state.db.execute("SELECT folder, digest FROM entry_folders").fetchall()
    assert str(by_row.value) == str(all_rows.value) == expected
