"""The fast E.164 check never disagrees with phonenumbers, in Python or in SQL.

``ingest.e164.certified`` may only say "valid, and its E.164 form is itself" when phonenumbers'
parse + is_valid_number + format say exactly that; its SQL form must give the same answer as the
Python one. The cases: every region's and non-geographic entity's example number of every type,
single-digit edits of them, and random digit strings behind every calling code.
"""

from __future__ import annotations

import random

import duckdb
import phonenumbers
import pyarrow as pa
import pytest
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumberFormat, PhoneNumberType

from ingest.e164 import calling_code_sql, certified, certified_sql, plus_digits_sql


def _phonenumbers_says_valid(text: str) -> bool:
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) and phonenumbers.format_number(parsed, PhoneNumberFormat.E164) == text


def _examples() -> list[str]:
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in sorted(PhoneNumberType.values()):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                found.append(phonenumbers.format_number(example, PhoneNumberFormat.E164))
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        example = phonenumbers.example_number_for_non_geo_entity(code)
        if example is not None:
            found.append(phonenumbers.format_number(example, PhoneNumberFormat.E164))
    return sorted(set(found))


def _edited(examples: list[str], rng: random.Random) -> list[str]:
    out = []
    for text in examples:
        for _ in range(12):
            digits = list(text[1:])
            i = rng.randrange(len(digits))
            roll = rng.random()
            if roll < 0.5:
                digits[i] = str(rng.randrange(10))
            elif roll < 0.75:
                digits.insert(i, str(rng.randrange(10)))
            elif len(digits) > 3:
                del digits[i]
            out.append("+" + "".join(digits))
    return out


def _random(rng: random.Random) -> list[str]:
    return ["+" + str(code) + "".join(str(rng.randrange(10)) for _ in range(rng.randrange(1, 16)))
            for code in sorted(COUNTRY_CODE_TO_REGION_CODE) for _ in range(150)]


# shapes the fast check must leave to phonenumbers (not "+digits" or odd lengths)
_ODD = ["+", "+1", "+12", "0123456789", "+1 202 555 0123", "+1-202-555-0123", " +12025550123",
        "+\u0661\u0662\u0660\u0662\u0665\u0665\u0665\u0660\u0661\u0662\u0663", "+001202555", "+" + "1" * 260,
        "+44 07911 123456", "+4407911123456", "+5491123456789", "tel:+12025550123"]


@pytest.fixture(scope="module")
def cases() -> list[str]:
    rng = random.Random(20261202)
    examples = _examples()
    return examples + _edited(examples, rng) + _random(rng) + _ODD


def test_certifies_only_what_phonenumbers_accepts_as_it_is(cases):
    wrongly = [t for t in cases if certified(t) and not _phonenumbers_says_valid(t)]
    assert wrongly == []


def test_certifies_nearly_every_valid_example():
    examples = _examples()
    valid = [t for t in examples if _phonenumbers_says_valid(t)]
    taken = [t for t in valid if certified(t)]
    assert len(valid) > 1000
    # what it leaves are numbers behind a national prefix the parser might strip (Argentina's can
    # match nothing at all): phonenumbers still reads those
    assert len(taken) >= 0.97 * len(valid)


@pytest.mark.parametrize("text", _ODD)
def test_leaves_other_shapes_to_phonenumbers(text):
    assert certified(text) is None


def test_the_sql_form_answers_as_the_python_one(cases):
    conn = duckdb.connect()
    conn.register("cases", pa.table({"v": pa.array(cases, pa.string())}))
    conn.execute(f"CREATE TABLE coded AS SELECT v, {calling_code_sql('v')} AS code FROM cases "
                 f"WHERE {plus_digits_sql('v')}")
    codes = [int(c) for (c,) in conn.execute("SELECT DISTINCT code FROM coded WHERE code IS NOT NULL").fetchall()]
    sql = dict(conn.execute(f"SELECT v, {certified_sql('v', 'code', codes)} FROM coded").fetchall())
    disagree = [t for t in cases if bool(certified(t)) != bool(sql.get(t, False))]
    assert disagree == []
    assert sum(map(bool, sql.values())) > 1000  # the comparison is not between two empty answers
