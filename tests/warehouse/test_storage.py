"""Files this DuckDB cannot open are refused in one line that says who wrote them and what to do.

The "newer" and "older" files are made by rewriting the storage version in a real database's main
header and recomputing the header checksum the way DuckDB does (xor of each 8-byte word times
0xbf58476d1ce4e5b9, seeded with 5381), so DuckDB itself raises its real refusal.
"""

from __future__ import annotations

import struct
from pathlib import Path

import duckdb
import numpy as np
import pytest

from tests.conftest import run_cli
from warehouse.connections import connect_build, connect_published
from warehouse.publish import CURRENT
from warehouse.storage import StorageError, read_header


def _checksum(block: bytes) -> int:
    words = np.frombuffer(block, dtype="<u8")
    with np.errstate(over="ignore"):
        return int(np.bitwise_xor.reduce(words * np.uint64(0xBF58476D1CE4E5B9)) ^ np.uint64(5381))


def database_with_storage_version(path: Path, version: int) -> Path:
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE t AS SELECT 1 AS x")
    conn.close()
    with open(path, "r+b") as handle:
        header = bytearray(handle.read(4096))
        header[12:20] = struct.pack("<Q", version)
        header[0:8] = struct.pack("<Q", _checksum(bytes(header[8:4096])))
        handle.seek(0)
        handle.write(header)
    return path


def test_the_header_names_the_duckdb_that_wrote_a_file(tmp_path):
    path = tmp_path / "fresh.duckdb"
    duckdb.connect(str(path)).close()
    header = read_header(path)
    assert header is not None and header.written_by == f"v{duckdb.__version__}"
    assert read_header(tmp_path / "missing.duckdb") is None


def test_a_warehouse_from_a_newer_duckdb_is_refused_in_one_line(settings):
    settings.ensure()
    database_with_storage_version(settings.warehouse_path, 70)
    with pytest.raises(StorageError) as caught:
        connect_build(settings)
    message = str(caught.value)
    assert "\n" not in message
    assert "newer DuckDB" in message and f"v{duckdb.__version__}" in message and "storage version 70" in message
    assert "make setup" in message and "--full-refresh" in message


def test_a_warehouse_from_before_duckdb_0_9_is_refused_with_what_to_do(settings):
    settings.ensure()
    database_with_storage_version(settings.warehouse_path, 38)
    with pytest.raises(StorageError, match=r"older than 0\.9 \(storage version 38.*nudgelab build --full-refresh"):
        connect_build(settings)


def test_a_snapshot_from_a_newer_duckdb_says_to_publish_again(settings):
    settings.ensure()
    name = "snapshot-20990101T000000-abcdef.duckdb"
    database_with_storage_version(settings.published_dir / name, 1000)
    (settings.published_dir / CURRENT).write_text(name + "\n")
    with pytest.raises(StorageError) as caught:
        connect_published(settings)
    assert "newer DuckDB" in str(caught.value) and "run `nudgelab build` to publish" in str(caught.value)


def test_a_file_that_is_not_a_database_is_named_as_such(settings):
    settings.ensure()
    settings.warehouse_path.write_bytes(b"not a database\n" * 1000)
    with pytest.raises(StorageError, match="is not a DuckDB database"):
        connect_build(settings)


def test_the_cli_refuses_a_newer_warehouse_with_exit_2_and_no_traceback(settings, home):
    settings.ensure()
    database_with_storage_version(settings.warehouse_path, 70)
    for args in (["build"], ["experiments", "report"], ["anomalies"]):
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert proc.stderr.strip().count("\n") == 0 and "newer DuckDB" in proc.stderr
