"""One hash key per warehouse: issue 20, defect 6.

Derived event ids hash the keyed hashes of a record's identifiers, so another key would land the
same records again. The warehouse records its key's fingerprint and refuses any other key, and a
run that finds no key at all for a hashed warehouse does not quietly make a new one.
"""

from __future__ import annotations

from tests.conftest import query, run_cli

SENDS = ("message_id,user_id,channel,occurred_at,recipient\n"
         "m1,u1,sms,2026-10-01T08:00:00Z,+14155550123\n"
         "m2,u2,sms,2026-10-01T08:00:00Z,+442079460958\n")


def test_another_key_is_refused_and_nothing_is_landed_twice(settings, tmp_path):
    path = tmp_path / "sends.csv"
    path.write_text(SENDS)
    first = run_cli("ingest", str(path))
    assert first.returncode == 0, first.stderr
    other = run_cli("ingest", str(path), env_extra={"NUDGELAB_HASH_KEY": "another-key"})
    assert other.returncode == 2
    assert "hashed with another key" in other.stderr and "NUDGELAB_HASH_KEY" in other.stderr
    assert "Traceback" not in other.stderr and len(other.stderr.strip().splitlines()) == 1
    assert query(settings, "SELECT count(*) FROM raw.sends")[0][0] == 2
    again = run_cli("ingest", str(path), "--json")
    assert again.returncode == 0 and '"duplicates": 2' in again.stdout


def test_a_missing_key_for_a_hashed_warehouse_is_an_error_not_a_new_key(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("NUDGELAB_HASH_KEY")
    path = tmp_path / "sends.csv"
    path.write_text(SENDS)
    assert run_cli("ingest", str(path)).returncode == 0  # the first run creates hash.key
    key_file = settings.home / "hash.key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    key_file.unlink()  # lost (a new machine, a careless clean-up)
    proc = run_cli("ingest", str(path))
    assert proc.returncode == 2 and "no hash key" in proc.stderr
    assert not key_file.exists()
    assert query(settings, "SELECT count(*) FROM raw.sends")[0][0] == 2
