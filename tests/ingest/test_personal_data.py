"""No raw phone number or e-mail of the inputs anywhere under NUDGELAB_HOME: issue 20, defect 4.

A generated scenario plus files that put identifiers everywhere a careless export does: in the
identifier columns, in the wrong columns (quarantined, quoted in reasons), in unknown and
duplicated columns (extra), in malformed CSV and JSON lines, in vendor callbacks, in free text
(a reply, a URL). After ingest, build, experiment reports and anomaly alerts, every column of
every table of the warehouse and of the published snapshot, and every file under the home, is
searched for each of those identifiers in raw and normalised form. (ops.sqlite, the dispatch
module's contact book, is the one place raw contacts may live; there is none here.)
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ingest.generator import generate
from ingest.runner import run_ingest
from nudgelab.pipeline import build
from tests.conftest import TEST_KEY, run_cli
from warehouse.publish import current_snapshot
from warehouse.settings import load_settings

PHONES = ["+1 415 555 0123", "+44 20 7946 0958", "+33 6 12 34 56 78", "+49 1512 3456789"]
EMAILS = ["alice.smith@example.com", "Bob.Jones@Example.org", "carol@example.net", "name@example.com"]
TOKEN = re.compile(r"\+?\d[\d ().-]{6,}\d")
EMAIL_TOKEN = re.compile(r"[a-z0-9._%+'-]+@[a-z0-9.-]+\.[a-z]{2,}")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _careless_files(folder: Path, user: str) -> None:
    folder.mkdir()
    p, e = PHONES, EMAILS
    (folder / "users.csv").write_text(
        "user_id,occurred_at,segment,country,phone,email,msisdn,notes\n"
        f"pii-u1,2026-10-01T00:00:00Z,new,US,{p[0]},{e[0]},{p[2]},call {e[1]} first\n"
        f"pii-u2,2026-10-01T00:00:00Z,new,US,{e[3]},{p[1]},,\n"  # swapped columns: both quarantined
    )
    (folder / "sends.csv").write_text(
        "message_id,user_id,channel,occurred_at,recipient,recipient\n"
        f"pii-m1,{user},sms,2026-10-01T08:00:00Z,{p[0]},{e[2]}\n"
        f"pii-m2,{user},sms,{e[0]},{p[3]},\n"  # an address where the time should be
        f"pii-m3,{user},sms,2026-10-01T08:00:00Z,{p[1]},{e[1]},too,many,{p[2]}\n"  # a malformed line
    )
    (folder / "replies.jsonl").write_text(
        f'{{"event_id": "pii-r1", "occurred_at": "2026-10-01T09:00:00Z", "user_id": "{user}", '
        f'"text": "STOP. my new number is {p[3]}", "keyword": "STOP"}}\n'
        f'{{"event_id": "pii-r2", "occurred_at": "2026-10-01T09:00:00Z", "text": "write to {e[2]}" oops}}\n'
    )
    mo = f"from={p[0].replace(' ', '').replace('+', '%2B')}&to=12345&text=HELP&time=2026-10-01+09:30:00&smsc=smsc-a"
    (folder / "kannel-mo.log").write_text(
        f"{mo}&user_id={user}\n{mo}&keyword=help\n{mo}&user_id={user}&x=1\n"
        f"garbage line with {e[0]} and {p[1]}\n"
    )
    (folder / "clicks.csv").write_text(
        "event_id,occurred_at,message_id,user_id,url,user_agent,ip\n"
        f"pii-c1,2026-10-01T09:00:00Z,pii-m1,{user},https://x.example/l?e={e[3]}&tel={p[2].replace(' ', '')},Mozilla/5.0,203.0.113.7\n"
    )


def _needles(data: Path) -> tuple[set[str], set[str]]:
    users = pl.read_csv(data / "users.csv", infer_schema_length=0)
    phones = {_digits(v) for v in users["phone"].drop_nulls().to_list()} | {_digits(v) for v in PHONES}
    emails = {v.strip().lower() for v in users["email"].drop_nulls().to_list()} | {v.lower() for v in EMAILS}
    sends = pl.read_csv(data / "sends.csv", infer_schema_length=0)
    for value in sends["recipient"].drop_nulls().to_list():
        (emails.add(value.lower()) if "@" in value else phones.add(_digits(value)))
    return {d for d in phones if len(d) >= 8}, emails


def _leaks(text: str, phones: set[str], emails: set[str]) -> set[str]:
    found = set()
    for token in TOKEN.findall(text):
        digits = _digits(token)
        found |= {d for d in phones if d in digits}
    found |= {m for m in EMAIL_TOKEN.findall(text.lower()) if m in emails}
    return found


def _scan_database(path: Path, phones: set[str], emails: set[str]) -> dict[str, set[str]]:
    conn = duckdb.connect(str(path), read_only=True)
    leaks: dict[str, set[str]] = {}
    try:
        columns = conn.execute("SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                               "WHERE NOT internal ORDER BY ALL").fetchall()
        for schema, table, column in columns:
            values = conn.execute(
                f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL '
                f"AND regexp_matches(CAST(\"{column}\" AS VARCHAR), '@|[0-9][0-9 ().-]{{6,}}[0-9]')").fetchall()
            hits = set().union(*(_leaks(v, phones, emails) for (v,) in values)) if values else set()
            if hits:
                leaks[f"{schema}.{table}.{column}"] = hits
    finally:
        conn.close()
    return leaks


@pytest.fixture(scope="module")
def everything(tmp_path_factory):
    root = tmp_path_factory.mktemp("pii")
    with pytest.MonkeyPatch.context() as mp:
        home = root / "home"
        mp.setenv("NUDGELAB_HOME", str(home))
        mp.setenv("NUDGELAB_HASH_KEY", TEST_KEY)
        mp.setenv("NUDGELAB_ALERT_LOG", str(home / "alerts.log"))
        settings = load_settings(home)
        generate(root / "data", fmt="csv", users=800, days=6, seed=3)
        user = pl.read_csv(root / "data" / "users.csv", infer_schema_length=0)["user_id"][0]
        _careless_files(root / "careless", user)
        summary = run_ingest(settings, [root / "data", root / "careless"], quiet=True)
        assert summary.total("quarantined") >= 6, summary.as_dict()
        assert build(settings).success
        assert run_cli("experiments", "report").returncode == 0
        assert run_cli("anomalies").returncode == 0
        yield settings, _needles(root / "data")


def test_the_careless_records_were_kept_where_they_can_be_found(everything):
    settings, _ = everything
    conn = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        reasons = [r for (r,) in conn.execute("SELECT reason FROM raw.quarantine").fetchall()]
        extra = conn.execute("SELECT CAST(extra AS VARCHAR) FROM raw.users WHERE user_id = 'pii-u1'").fetchone()[0]
        reply = conn.execute("SELECT text FROM raw.replies WHERE event_id = 'pii-r1'").fetchone()[0]
    finally:
        conn.close()
    assert any("phone: not a phone number" in r for r in reasons)
    assert any(r.startswith("occurred_at '<email:") for r in reasons)
    assert any("malformed CSV line" in r for r in reasons)
    assert '"msisdn": "<id:' in extra and "call <email:" in extra
    assert reply.startswith("STOP. my new number is <phone:")


def test_no_raw_identifier_is_in_any_column_of_the_warehouse_or_the_snapshot(everything):
    settings, (phones, emails) = everything
    assert len(phones) > 500 and len(emails) > 100
    for path in (settings.warehouse_path, current_snapshot(settings)):
        assert _scan_database(path, phones, emails) == {}, path


def test_no_raw_identifier_is_in_any_file_under_the_home(everything):
    settings, (phones, emails) = everything
    leaks = {}
    for path in settings.home.rglob("*"):
        if path.is_file():
            hits = _leaks(path.read_bytes().decode("latin-1"), phones, emails)
            if hits:
                leaks[str(path.relative_to(settings.home))] = hits
    assert leaks == {}


def test_the_home_and_its_databases_are_private(everything):
    settings, _ = everything
    assert oct(settings.home.stat().st_mode & 0o777) == "0o700"
    for path in [settings.warehouse_path, current_snapshot(settings), settings.home / "warehouse.lock"]:
        assert oct(path.stat().st_mode & 0o077) == "0o0", path
