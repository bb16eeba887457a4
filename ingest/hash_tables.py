"""The keyed-hash lookup tables of one batch: each distinct identifier once, normalised, hashed.

For every identifier column of the stage (recipient, phone, sender, email, ip) a temp table
``hash_<column>`` (value, context, hashed, reason) that the typed select joins. The definitions
are ``ingest.hashing``'s; this module only decides where each step runs:

- values whose normal form SQL can see at once — an ASCII e-mail address, a dotted-quad IPv4
  address in canonical form, a push token without surrounding space, a valid phone number already
  in E.164 (``ingest.e164``'s check of phonenumbers' metadata, as RE2 patterns) — are normalised in
  SQL;
- everything else goes through ``hashing``'s Python normalisers once per distinct value;
- the HMAC-SHA256 itself runs in SQL over the normal forms (DuckDB's ``sha256`` on the two padded
  keys), not one Python call per value.

The hashes are exactly ``hashing.keyed_hash(normalise(value))``: ``tests/ingest/test_hash_tables.py``
compares the tables with that per-value path over mixed, messy inputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import duckdb
import pyarrow as pa

from ingest import e164, hashing
from ingest.normalise import hash_context_sql, q
from ingest.stage import STAGE
from warehouse.sql import rows

HASHED_INPUTS = ("recipient", "phone", "sender", "email", "ip")
_BLOCK = 64  # SHA-256's block size: the HMAC pads its key to this

# SQL's part. Each is a predicate under which the normal form of ``v`` is ``v`` itself (or its
# ASCII lower case, for an e-mail) and the Python normaliser would accept it: ASCII without any
# space means Python's strip() changes nothing and lower() equals DuckDB's.
_ASCII_NO_SPACE = "regexp_full_match(v, '[!-~]+')"
_EMAIL_SHAPE = r"regexp_full_match(v, '[^@]+@[^@]+\.[^@]+')"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_CANONICAL = rf"regexp_full_match(v, '{_OCTET}(?:\.{_OCTET}){{3}}')"
_TOKEN_UNPADDED = "regexp_full_match(v, '(?s)[!-~](?:.*[!-~])?')"  # ends are not space of any kind
_HAS_AT = "contains(v, '@')"
_EMAIL_SQL = f"CASE WHEN {_ASCII_NO_SPACE} AND {_EMAIL_SHAPE} THEN lower(v) END"


# when a value is read as a phone number (ingest.hashing's dispatch by channel or by "@")
_READ_AS_PHONE = {
    "phone": "TRUE",
    "sender": f"NOT {_HAS_AT}",
    # a channel SQL reads exactly as Python does; any other goes to Python (its strip() is wider)
    "recipient": f"(ctx IN ('sms', 'rcs') OR (coalesce(ctx, '') = '' AND NOT {_HAS_AT}))",
}


def _fast_sql(input_name: str, codes: list[int]) -> str:
    """The SQL normal form of ``v`` (context ``ctx``) where SQL can tell it, else NULL; ``codes``:
    the calling codes of the batch's E.164 numbers."""
    whens = []
    if input_name in ("email", "sender"):
        whens.append(f"WHEN {'TRUE' if input_name == 'email' else _HAS_AT} THEN {_EMAIL_SQL}")
    elif input_name == "ip":
        whens.append(f"WHEN {_IPV4_CANONICAL} THEN v")
    elif input_name == "recipient":  # ctx: the channel, already lower(trim())
        whens.append(f"WHEN ctx = 'email' OR (coalesce(ctx, '') = '' AND {_HAS_AT}) THEN {_EMAIL_SQL}")
        whens.append(f"WHEN ctx = 'push' THEN CASE WHEN {_TOKEN_UNPADDED} THEN v END")
    if input_name in _READ_AS_PHONE and codes:
        certified = e164.certified_sql("v", e164.calling_code_sql("v"), codes)
        whens.append(f"WHEN {_READ_AS_PHONE[input_name]} AND {e164.plus_digits_sql('v')} AND {certified} THEN v")
    return f"CASE {' '.join(whens)} END" if whens else "CAST(NULL AS VARCHAR)"


def _calling_codes(conn: duckdb.DuckDBPyConnection, pairs: str, input_name: str) -> list[int]:
    """The calling codes of the values of ``pairs`` read as E.164 phone numbers."""
    if input_name not in _READ_AS_PHONE:
        return []
    found = rows(conn, f"SELECT DISTINCT {e164.calling_code_sql('v')} FROM {pairs} "
                       f"WHERE {_READ_AS_PHONE[input_name]} AND {e164.plus_digits_sql('v')}")
    return sorted(int(code) for (code,) in found if code is not None)


def _normaliser(input_name: str) -> Callable[[str, str | None], str]:
    if input_name == "recipient":
        return lambda v, ctx: hashing.normalise_recipient(v, ctx)
    if input_name == "phone":
        return lambda v, ctx: hashing.normalise_phone(v, ctx)
    if input_name == "sender":
        return lambda v, ctx: hashing.normalise_contact(v, ctx)
    if input_name == "email":
        return lambda v, ctx: hashing.normalise_email(v)
    if input_name == "ip":
        return lambda v, ctx: hashing.normalise_ip(v)
    raise ValueError(input_name)


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys (RFC 2104), for the SQL form of ``hashing.keyed_hash``."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


# hashing.keyed_hash in SQL: hex of HMAC-SHA256, first 128 bits
KEYED_HASH_SQL = "sha256($outer || unhex(sha256($inner || encode(normal))))[:32]"


def build_hash_tables(conn: duckdb.DuckDBPyConnection, present: set[str], key: bytes) -> dict[str, str]:
    """For each identifier column present, a temp table mapping each distinct (value, context) to its
    keyed hash, or to the reason it cannot be hashed."""
    inner, outer = hmac_pads(key)
    tables: dict[str, str] = {}
    for input_name in (n for n in HASHED_INPUTS if n in present):
        table = f"hash_{input_name}"
        ctx = hash_context_sql(input_name, present)
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {table}_pairs AS SELECT DISTINCT s.{q(input_name)} AS v, "
                     f"{ctx} AS ctx FROM {STAGE} s WHERE nullif(s.{q(input_name)}, '') IS NOT NULL")
        codes = _calling_codes(conn, f"{table}_pairs", input_name)
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {table}_normal AS SELECT v, ctx, {_fast_sql(input_name, codes)} "
                     f"AS normal, CAST(NULL AS VARCHAR) AS reason FROM {table}_pairs")
        conn.execute(f"DROP TABLE {table}_pairs")
        _normalise_the_rest(conn, f"{table}_normal", input_name)
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT v AS value, ctx AS context, "
                     f"CASE WHEN normal IS NOT NULL THEN {KEYED_HASH_SQL} END AS hashed, reason FROM {table}_normal",
                     {"inner": inner, "outer": outer})
        conn.execute(f"DROP TABLE {table}_normal")
        tables[input_name] = table
    return tables


def _normalise_the_rest(conn: duckdb.DuckDBPyConnection, table: str, input_name: str) -> None:
    """Python's normal form (or reason) for the values SQL left open, written back into ``table``."""
    normalise = _normaliser(input_name)
    values, contexts, normals, reasons = [], [], [], []
    for value, context in rows(conn, f"SELECT v, ctx FROM {table} WHERE normal IS NULL"):
        values.append(value)
        contexts.append(context)
        try:
            normals.append(normalise(value, context))
            reasons.append(None)
        except hashing.HashError as exc:
            normals.append(None)
            reasons.append(f"{input_name}: {exc}")
    if not values:
        return
    conn.register("python_normal", pa.table({"v": pa.array(values, pa.string()), "ctx": pa.array(contexts, pa.string()),
                                             "normal": pa.array(normals, pa.string()),
                                             "reason": pa.array(reasons, pa.string())}))
    try:
        conn.execute(f"DELETE FROM {table} WHERE normal IS NULL")
        conn.execute(f"INSERT INTO {table} SELECT v, ctx, normal, reason FROM python_normal")
    finally:
        conn.unregister("python_normal")
