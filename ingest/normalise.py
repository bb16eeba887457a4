"""SQL that turns staged text into the contract's typed columns, and says why a row cannot be.

Everything here is set-based (DuckDB expressions over the whole batch), so that validation keeps
pace with DuckDB's own readers. For each field there is a value expression and a reason
expression (NULL when the value is acceptable); a row with any reason goes to quarantine.
"""

from __future__ import annotations

from ingest.bots import bot_case_sql
from ingest.contract import EventType, Field

ORD_SQL = "coalesce(s._ord, s.rowid + 1)"  # see ingest.stage: CSV stages order rows by rowid
LINE_SQL = "coalesce(s._line, s.rowid + 2)"


def file_sql(single) -> str:
    """A staged record's file: its own when the batch has several, else the batch's one file."""
    return f"coalesce(s._file, {lit(str(single))})"

MAX_FIELD_BYTES = 1_048_576  # a longer field is almost always a broken quote or an attack
EARLIEST = "2000-01-01"
TRUE_WORDS = ("true", "t", "1", "yes", "y")
FALSE_WORDS = ("false", "f", "0", "no", "n")


def q(identifier: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + identifier.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _shown(col: str) -> str:
    """A value as a reason quotes it: in single quotes (the quarantine redacts what is quoted)."""
    quote = "''''"  # the SQL literal of one single quote
    return f"{quote} || left(CAST({col} AS VARCHAR), 60) || {quote}"



def _has_zone(col: str) -> str:
    """True when the text carries a zone: Z/UTC at the end, or an offset sign after the date."""
    t = f"trim({col})"
    return (
        f"(suffix({t}, 'Z') OR suffix({t}, 'z') OR suffix({t}, 'UTC') "
        f"OR contains(substr({t}, 12), '+') OR contains(substr({t}, 12), '-'))"
    )


def _is_epoch(col: str) -> str:
    return f"(NOT contains({col}, '-') AND NOT contains({col}, ':') AND length(trim({col})) BETWEEN 9 AND 20)"


def _epoch(col: str) -> str:
    """Unix seconds as a timestamp; NULL (so: a reason) beyond ±1e11 s, where DuckDB would raise
    for the whole batch (an 18-digit number is milliseconds or nanoseconds, not seconds)."""
    seconds = f"try_cast(trim({col}) AS DOUBLE)"
    return f"CASE WHEN abs({seconds}) < 1e11 THEN to_timestamp({seconds}) END"


def timestamp_sql(col: str, timezone: str | None) -> str:
    """Parse ISO-8601 (with a zone), Unix seconds, or a naive time read in ``timezone``.

    String tests rather than regular expressions: this runs on every row of every batch.
    """
    naive = f"timezone({lit(timezone)}, try_cast(trim({col}) AS TIMESTAMP))" if timezone else "NULL"
    # The common case first: ending in Z says UTC, and the cast itself skips leading blanks, so it
    # needs none of the tests below (they cost more than the cast on millions of rows).
    return (
        f"CASE WHEN {col} IS NULL THEN NULL "
        f"WHEN suffix({col}, 'Z') THEN try_cast({col} AS TIMESTAMPTZ) "
        f"WHEN {_is_epoch(col)} THEN {_epoch(col)} "
        f"WHEN {_has_zone(col)} THEN try_cast(trim({col}) AS TIMESTAMPTZ) "
        f"ELSE {naive} END"
    )


def timestamp_reason_sql(name: str, col: str, typed: str, timezone: str | None) -> str:
    naive_reason = (
        f"{name} ' || {_shown(col)} || ' has no time zone: rerun with --timezone (the zone the source writes in)"
    )
    naive_test = "FALSE" if timezone else f"(NOT {_has_zone(col)} AND try_cast(trim({col}) AS TIMESTAMP) IS NOT NULL)"
    return (
        f"CASE WHEN {col} IS NOT NULL AND {typed} IS NULL THEN "
        f"CASE WHEN {naive_test} THEN '{naive_reason}' "
        f"ELSE '{name} ' || {_shown(col)} || ' is not a timestamp (expected ISO-8601 with a zone, or Unix seconds)' END "
        f"END"
    )


def field_sql(
    field: Field, col: str, timezone: str | None, typed_ref: str | None = None
) -> tuple[str, str | None]:
    """(value expression, reason expression or None) for one non-hash field read from ``col``.

    ``typed_ref`` names an already computed typed value for the reason to test (no recomputation).
    """
    name = field.name
    ref = typed_ref
    if field.kind == "timestamp":
        typed = timestamp_sql(col, timezone)
        return typed, timestamp_reason_sql(name, col, ref or typed, timezone)
    if field.kind == "int":
        typed = f"try_cast(trim({col}) AS BIGINT)"
        chk = ref or typed
        reason = f"CASE WHEN {col} IS NOT NULL AND {chk} IS NULL THEN '{name} ' || {_shown(col)} || ' is not a whole number' END"
        return typed, _with_range(field, chk, reason)
    if field.kind == "float":
        typed = f"try_cast(trim({col}) AS DOUBLE)"
        chk = ref or typed
        reason = (
            f"CASE WHEN {col} IS NOT NULL AND ({chk} IS NULL OR NOT isfinite({chk})) "
            f"THEN '{name} ' || {_shown(col)} || ' is not a number' END"
        )
        return typed, _with_range(field, chk, reason)
    if field.kind == "bool":
        words_t = ", ".join(lit(w) for w in TRUE_WORDS)
        words_f = ", ".join(lit(w) for w in FALSE_WORDS)
        low = f"lower(trim({col}))"
        typed = f"CASE WHEN {low} IN ({words_t}) THEN TRUE WHEN {low} IN ({words_f}) THEN FALSE END"
        chk = ref or typed
        reason = (
            f"CASE WHEN {col} IS NOT NULL AND {chk} IS NULL "
            f"THEN '{name} ' || {_shown(col)} || ' is not a boolean (true/false, 1/0, yes/no)' END"
        )
        return typed, reason
    if field.kind == "enum":
        allowed = ", ".join(lit(v) for v in field.values)
        # a value already in the vocabulary is its own normal form: skip lower/trim (costly on strings)
        typed = f"CASE WHEN {col} IN ({allowed}) THEN {col} ELSE lower(trim({col})) END"
        chk = ref or typed
        reason = (
            f"CASE WHEN {col} IS NOT NULL AND {chk} NOT IN ({allowed}) "
            f"THEN '{name} ' || {_shown(col)} || ' is not one of {'/'.join(field.values)}' END"
        )
        return typed, reason
    if field.kind == "json":
        return col, f"CASE WHEN {col} IS NOT NULL AND NOT json_valid({col}) THEN '{name} is not valid JSON' END"
    if field.kind == "text":
        return col, None
    raise ValueError(f"field {name}: kind {field.kind!r} has no SQL here")


def _with_range(field: Field, typed: str, reason: str) -> str:
    checks = []
    if field.minimum is not None:
        checks.append(f"WHEN {typed} < {field.minimum} THEN '{field.name} ' || {_shown(typed)} || ' is below {field.minimum:g}'")
    if field.maximum is not None:
        checks.append(f"WHEN {typed} > {field.maximum} THEN '{field.name} ' || {_shown(typed)} || ' is above {field.maximum:g}'")
    if not checks:
        return reason
    return f"coalesce({reason}, CASE {' '.join(checks)} END)"


def typed_select_sql(
    spec: EventType,
    stage: str,
    present: set[str],
    hash_tables: dict[str, str],
    timezone: str | None,
) -> str:
    """SELECT the staged rows of ``spec`` as typed contract columns plus ``_reasons``.

    Two levels: the inner query types every value once; the outer one states the reasons, the
    event id and derived flags from those typed values. ``present`` names the input columns the
    stage has (missing ones are NULL); ``hash_tables`` maps a hash field's input name to a temp
    table (value, context, hashed, reason).
    """
    inner: list[str] = []
    reasons: list[str] = []
    joins: list[str] = []

    def src(name: str) -> str:
        return f"s.{q(name)}" if name in present else "CAST(NULL AS VARCHAR)"

    def keep_input(field: Field) -> str:
        alias = f"__in_{field.name}"
        inner.append(f"nullif({src(field.input_name)}, '') AS {q(alias)}")
        return f"p.{q(alias)}"

    for field in spec.input_fields:
        col = f"nullif({src(field.input_name)}, '')"
        if field.kind == "hash":
            table = hash_tables.get(field.input_name)
            if table is None and field.name in present:
                # already keyed by a writer holding this installation's key (dispatch's sends):
                # taken as it is when it has the shape of a keyed hash, never quoted when it has not
                given = f"lower(trim(nullif({src(field.name)}, '')))"
                inner.append(f"CASE WHEN regexp_full_match({given}, '[0-9a-f]{{32}}') THEN {given} END AS {q(field.name)}")
                inner.append(f"CASE WHEN {given} IS NOT NULL AND NOT regexp_full_match({given}, '[0-9a-f]{{32}}') "
                             f"THEN '{field.name} is not a keyed hash (32 hex digits); give the raw value as "
                             f"{field.input_name} to have it hashed' END AS {q('__why_' + field.name)}")
                reasons.append(f"p.{q('__why_' + field.name)}")
                continue
            if table is None:
                inner.append(f"CAST(NULL AS VARCHAR) AS {q(field.name)}")
                continue
            alias = f"h_{field.input_name}"
            joins.append(
                f"LEFT JOIN {table} {alias} ON {alias}.value = {src(field.input_name)} "
                f"AND {alias}.context IS NOT DISTINCT FROM {hash_context_sql(field.input_name, present)}"
            )
            inner.append(f"{alias}.hashed AS {q(field.name)}")
            inner.append(f"{alias}.reason AS {q('__why_' + field.name)}")
            reasons.append(f"p.{q('__why_' + field.name)}")
            continue
        if field.name == "event_id":
            inner.append(f"{col} AS event_id_given")
            continue
        if field.input_name not in present:
            inner.append(f"CAST(NULL AS {field.sql_type}) AS {q(field.name)}")
            if field.required:
                reasons.append(f"'missing required field {field.name}'")
            continue
        typed, _ = field_sql(field, col, None if field.kind != "timestamp" else timezone)
        inner.append(f"{typed} AS {q(field.name)}")
        raw = keep_input(field) if field.kind != "text" or field.required else None
        if field.kind == "text":
            inner.append(f"strlen({col}) AS {q('__len_' + field.name)}")
            reasons.append(
                f"CASE WHEN p.{q('__len_' + field.name)} > {MAX_FIELD_BYTES} THEN '{field.name} is ' || "
                f"p.{q('__len_' + field.name)} || ' bytes; the limit is {MAX_FIELD_BYTES} (a broken quote upstream?)' END"
            )
        if raw is not None:
            _, reason = field_sql(field, raw, timezone, typed_ref=f"p.{q(field.name)}")
            if reason:
                reasons.append(reason)
        if field.required:
            reasons.append(f"CASE WHEN {raw} IS NULL THEN 'missing required field {field.name}' END")
        if field.name == "occurred_at":
            ref = f"p.{q(field.name)}"
            reasons.append(
                f"CASE WHEN {ref} < TIMESTAMPTZ '{EARLIEST}' OR {ref} > now() + INTERVAL 1 DAY "
                f"THEN 'occurred_at ' || {ref} || ' is outside {EARLIEST} .. tomorrow (a clock error?)' END"
            )
    for group in spec.required_any:
        names = [_input(spec, n) for n in group]
        if not any(n in present for n in names):
            reasons.append(f"'missing required field {' or '.join(group)}'")
            continue
        cond = " AND ".join(f"nullif({src(n)}, '') IS NULL" for n in names)
        inner.append(f"({cond}) AS {q('__none_' + '_'.join(group))}")
        reasons.append(f"CASE WHEN p.{q('__none_' + '_'.join(group))} THEN 'missing required field {' or '.join(group)}' END")
    # A record the reader could not understand keeps the reader's reason alone.
    reason_sql = "coalesce(p._reason, nullif(concat_ws('; ', " + ", ".join(reasons) + "), ''))"
    outer = [f"p.{q(f.name)}" for f in spec.input_fields if f.name not in ("event_id", "is_bot", "bot_reason")]
    outer.append(f"{event_id_sql(spec)} AS event_id")
    outer_join = ""
    if spec.name == "clicks":
        is_bot, bot_reason = clicks_bot_sql("ua.reason" if "user_agent" in present else "CAST(NULL AS VARCHAR)")
        outer += [f"{is_bot} AS is_bot", f"{bot_reason} AS bot_reason"]
        if "user_agent" in present:
            # the patterns run once per distinct agent (a few dozen), not once per click
            outer_join = (f"LEFT JOIN (SELECT agent, {bot_case_sql('agent')} AS reason FROM (SELECT DISTINCT "
                          f"nullif(s.user_agent, '') AS agent FROM {stage} s WHERE s._type = {lit(spec.name)})) ua "
                          f"ON ua.agent = p.user_agent")
    return (
        f"SELECT {', '.join(outer)}, p._extra, p._line, p._ord, p._file, {reason_sql} AS _reasons, FALSE AS _dup\n"
        f"FROM (SELECT {', '.join(inner)}, s._reason, s._extra, {LINE_SQL} AS _line, {ORD_SQL} AS _ord, "
        f"s._file\n"
        f"      FROM {stage} s {' '.join(joins)}\n"
        f"      WHERE s._type = {lit(spec.name)}) p {outer_join}"
    )


def _input(spec: EventType, name: str) -> str:
    for field in spec.input_fields:
        if field.name == name:
            return field.input_name
    return name


def hash_context_sql(input_name: str, present: set[str]) -> str:
    """What a hashed value is read with: the channel for a recipient, the country for a phone."""
    if input_name == "recipient" and "channel" in present:
        return "lower(trim(s.channel))"
    if input_name in ("phone", "sender") and "country" in present:
        return "upper(trim(s.country))"
    return "CAST(NULL AS VARCHAR)"


ADDED_LATER = {"clicks": ("provider_message_id",), "experiments": ("metric_tests", "bayes_prior")}


def event_id_sql(spec: EventType) -> str:
    """The event id: the source's when given, else a hash of the natural key or of the record."""
    if spec.natural_key:
        parts = []
        for name in spec.natural_key:
            if name == "occurred_at":
                parts.append("coalesce(CAST(epoch_us(p.occurred_at) AS VARCHAR), '')")
            else:
                parts.append(f"coalesce(CAST(p.{q(name)} AS VARCHAR), '')")
    else:
        # fields added to a contract later take part only when present (concat_ws skips a NULL), so
        # that the ids of records written before they existed stay the same
        parts = [f"CAST(p.{q(f.name)} AS VARCHAR)" if f.name in ADDED_LATER.get(spec.name, ()) else
                 f"coalesce(CAST(p.{q(f.name)} AS VARCHAR), '')" for f in spec.input_fields if f.name != "event_id"]
        parts.append("coalesce(p._extra, '')")
    return f"coalesce(p.event_id_given, {lit(spec.name[:3] + '-')} || md5(concat_ws('|', {', '.join(parts)})))"


def clicks_bot_sql(derived: str) -> tuple[str, str]:
    """(is_bot, bot_reason) for clicks: the source's flag when given, else the user agent's
    (``derived``: the agent's bot reason, or NULL)."""
    return (
        f"coalesce(p.is_bot, ({derived}) IS NOT NULL)",
        f"coalesce(p.bot_reason, {derived}, CASE WHEN p.is_bot THEN 'flagged_by_source' END)",
    )
