"""The batch's hash tables give exactly ``hashing.keyed_hash(normalise(value))``, whichever side
(SQL or Python) normalised a value, and the same reason when it cannot be hashed."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from ingest import hashing
from ingest.hash_tables import HASHED_INPUTS, build_hash_tables
from ingest.stage import STAGE

PHONES = ["+14155552671", "+447911123456", "+4407911123456", "+491701234567", "+33612345678", "+919876543210",
          "+5491123456789", "+390612345678", "+12025550123", "+1 415 555 2671", " +14155552671 ", "+0123456",
          "+999123456", "07911 123456", "(415) 555-2671", "+\u0661\u0664\u0661\u0665\u0665\u0665\u0665\u0662\u0666"
          "\u0667\u0661", "not a number", "+1415555267", "+18005550199", "+79161234567", "+77012345678"]
EMAILS = ["ana@example.com", "Ana.Lima@Example.COM", " bob@example.org ", "no-at-sign", "a@b", "x@y.z",
          "ÄNNE@example.de", "tab\t@example.com", "nbsp\u00a0@example.com", "two@@example.com",
          "trail@example.com\u00a0"]
IPS = ["17.58.59.233", "10.0.0.1", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", " 8.8.8.8", "::1",
       "2001:DB8::1", "::ffff:1.2.3.4", "fe80::1%eth0", "bad"]
TOKENS = ["token-abc", " padded ", "\u00a0nbsp", "inner space ok", "x"]
CHANNELS = ["sms", "SMS ", "email", "email\t", "push", "rcs", None, "", "whatsapp"]
COUNTRIES = ["GB", "us", None, "XX", " FR"]


def _stage_rows() -> dict[str, list]:
    recipients = PHONES + EMAILS + TOKENS
    out = {name: [] for name in ("recipient", "channel", "phone", "country", "sender", "email", "ip")}
    n = 0
    for i, recipient in enumerate(recipients):
        for j, channel in enumerate(CHANNELS):
            n += 1
            out["recipient"].append(recipient)
            out["channel"].append(channel)
            out["phone"].append(PHONES[(i + j) % len(PHONES)])
            out["country"].append(COUNTRIES[(i * 3 + j) % len(COUNTRIES)])
            out["sender"].append((PHONES + EMAILS)[(i + 2 * j) % len(PHONES + EMAILS)])
            out["email"].append(EMAILS[(i + j) % len(EMAILS)])
            out["ip"].append(IPS[(i + j) % len(IPS)])
    return out


def _expected(input_name: str, value: str, context: str | None, key: bytes) -> tuple[str | None, str | None]:
    normalise = {
        "recipient": lambda: hashing.normalise_recipient(value, context),
        "phone": lambda: hashing.normalise_phone(value, context),
        "sender": lambda: hashing.normalise_contact(value, context),
        "email": lambda: hashing.normalise_email(value),
        "ip": lambda: hashing.normalise_ip(value),
    }[input_name]
    try:
        return hashing.keyed_hash(normalise(), key), None
    except hashing.HashError as exc:
        return None, f"{input_name}: {exc}"


@pytest.mark.parametrize("key", [b"test-key", b"k" * 100], ids=["short key", "key longer than a block"])
def test_every_value_hashes_as_the_per_value_path_says(key):
    conn = duckdb.connect()
    conn.register("staged", pa.table(_stage_rows()))
    conn.execute(f"CREATE TEMP TABLE {STAGE} AS SELECT * FROM staged")
    tables = build_hash_tables(conn, set(HASHED_INPUTS) | {"channel", "country"}, key)
    assert sorted(tables) == sorted(HASHED_INPUTS)
    hashed_somewhere = 0
    for input_name, table in tables.items():
        got = {(v, c): (h, r) for v, c, h, r in conn.execute(f"SELECT value, context, hashed, reason FROM {table}").fetchall()}
        pairs = conn.execute(f"SELECT DISTINCT {input_name}, "
                             + {"recipient": "lower(trim(channel))", "phone": "upper(trim(country))",
                                "sender": "upper(trim(country))"}.get(input_name, "CAST(NULL AS VARCHAR)")
                             + f" FROM {STAGE} WHERE nullif({input_name}, '') IS NOT NULL").fetchall()
        assert len(got) == len(pairs)
        for value, context in pairs:
            assert got[(value, context)] == _expected(input_name, value, context, key), (input_name, value, context)
            hashed_somewhere += got[(value, context)][0] is not None
    assert hashed_somewhere > 100  # most values hash: the comparison is not between rejections only
