"""A fast check of phone numbers already written in E.164 (``+`` and ASCII digits), from
phonenumbers' own metadata.

``phonenumbers.parse`` + ``is_valid_number`` take 20–40 µs a number in pure Python (a general
parser: punctuation, extensions, vanity letters, dialling prefixes); a sends file has a hundred
thousand distinct recipients, nearly all already in E.164. For those, validity is a question for the
metadata alone: the country calling code, the region it belongs to, and the national number's
possible lengths and patterns. This module answers it with the same metadata and the same rules,
regexes compiled once and each region's type patterns joined into one per length.

It only ever *certifies*: ``certified(text)`` is True when phonenumbers would accept ``text`` as a
valid number whose E.164 form is ``text`` itself, and None when it cannot tell cheaply (anything that
is not ``+digits``, a national prefix that the parser might strip, an unknown calling code, or an
invalid number, whose reason phonenumbers words). Undecided numbers go through phonenumbers as
before, so results never change; ``tests/ingest/test_e164.py`` holds this against phonenumbers over
every region's example numbers and hundreds of thousands of random ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata
from phonenumbers.phonenumberutil import (
    REGION_CODE_FOR_NON_GEO_ENTITY,
    country_code_for_valid_region,
    region_code_for_country_code,
)

_PLUS_DIGITS = re.compile(r"\+[0-9]{3,249}")  # phonenumbers reads at most 250 characters
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' bounds on a national significant number
# the number types phonenumbers tries before mobile, in its order (mobile is added when its
# pattern differs from the fixed line's)
_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
          "fixed_line")


@dataclass(frozen=True)
class _Region:
    """One region's validity rule: the general description, then any number type. Patterns are kept
    as phonenumbers writes them (for SQL) and compiled (for Python)."""

    leading_digits: str | None  # picks this region among those sharing a calling code
    general_lengths: tuple[int, ...]  # empty: any length (no possible lengths listed)
    general: str | None
    by_length: dict[int, str]  # the types allowing that length, joined
    any_length: str | None  # the types listing no lengths, joined
    valid_here: bool  # is_valid_number_for_region's check of the calling code

    @cached_property
    def _compiled(self) -> tuple[re.Pattern | None, re.Pattern | None, dict[int, re.Pattern], re.Pattern | None]:
        def c(pattern: str | None) -> re.Pattern | None:
            return re.compile(pattern) if pattern is not None else None
        return (c(self.leading_digits), c(self.general), {n: re.compile(p) for n, p in self.by_length.items()},
                c(self.any_length))

    def leads(self, nsn: str) -> bool:
        leading = self._compiled[0]
        return leading is not None and leading.match(nsn) is not None

    def is_valid(self, nsn: str) -> bool:
        return self.valid_here and self.has_type(nsn)

    def has_type(self, nsn: str) -> bool:
        """phonenumbers' number type is not UNKNOWN."""
        _, general, by_length, any_length = self._compiled
        if general is None:
            return False
        if self.general_lengths and len(nsn) not in self.general_lengths:
            return False
        if not general.fullmatch(nsn):
            return False
        typed = by_length.get(len(nsn))
        if typed is not None and typed.fullmatch(nsn):
            return True
        return any_length is not None and any_length.fullmatch(nsn) is not None

    def has_type_sql(self, nsn: str) -> str:
        if self.general is None:
            return "FALSE"
        parts = []
        if self.general_lengths:
            parts.append(f"length({nsn}) IN ({', '.join(map(str, self.general_lengths))})")
        parts.append(f"regexp_full_match({nsn}, {_lit(self.general)})")
        typed = [f"WHEN {n} THEN regexp_full_match({nsn}, {_lit(p)})" for n, p in sorted(self.by_length.items())]
        either = [f"CASE length({nsn}) {' '.join(typed)} ELSE FALSE END"] if typed else []
        if self.any_length is not None:
            either.append(f"regexp_full_match({nsn}, {_lit(self.any_length)})")
        parts.append(f"({' OR '.join(either) or 'FALSE'})")
        return " AND ".join(parts)

    def is_valid_sql(self, nsn: str) -> str:
        return self.has_type_sql(nsn) if self.valid_here else "FALSE"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _joined(patterns: list[str]) -> str | None:
    return "|".join(f"(?:{p})" for p in patterns) if patterns else None


def _region(metadata, region_code: str, calling_code: int) -> _Region:
    descs = [getattr(metadata, name) for name in _TYPES]
    if not metadata.same_mobile_and_fixed_line_pattern:
        descs.append(metadata.mobile)
    per_length: dict[int, list[str]] = {}
    unbounded: list[str] = []
    for desc in descs:
        if desc is None or not desc.national_number_pattern:
            continue  # phonenumbers: no pattern matches nothing
        if desc.possible_length:
            for length in desc.possible_length:
                per_length.setdefault(length, []).append(desc.national_number_pattern)
        else:
            unbounded.append(desc.national_number_pattern)
    general = metadata.general_desc
    valid_here = (region_code == REGION_CODE_FOR_NON_GEO_ENTITY
                  or calling_code == country_code_for_valid_region(region_code))
    return _Region(
        leading_digits=metadata.leading_digits,
        general_lengths=tuple(general.possible_length) if general and general.possible_length else (),
        general=general.national_number_pattern if general and general.national_number_pattern else None,
        by_length={length: _joined(patterns) for length, patterns in per_length.items()},
        any_length=_joined(unbounded),
        valid_here=valid_here,
    )


@dataclass(frozen=True)
class _CallingCode:
    national_prefix: str | None  # national_prefix_for_parsing of the code's main region
    regions: tuple[_Region | None, ...]  # in phonenumbers' order; None: no metadata

    @cached_property
    def _prefix(self) -> re.Pattern | None:
        return re.compile(self.national_prefix) if self.national_prefix else None

    def prefix_matches(self, nsn: str) -> bool:
        return self._prefix is not None and self._prefix.match(nsn) is not None

    def certified_sql(self, nsn: str) -> str:
        """``certified`` for national numbers of this code, in SQL (DuckDB's RE2 reads phonenumbers'
        patterns as Python does: no back-references or look-arounds in them)."""
        parts = [f"length({nsn}) BETWEEN {_MIN_NSN} AND {_MAX_NSN}"]
        if self.national_prefix:
            parts.append(f"NOT regexp_matches({nsn}, {_lit('^(?:' + self.national_prefix + ')')})")
        if len(self.regions) == 1:
            parts.append(self.regions[0].is_valid_sql(nsn) if self.regions[0] is not None else "FALSE")
        else:
            branches = []
            for region in self.regions:
                if region is None:
                    continue
                picks = (f"regexp_matches({nsn}, {_lit('^(?:' + region.leading_digits + ')')})"
                         if region.leading_digits is not None else region.has_type_sql(nsn))
                branches.append(f"WHEN {picks} THEN {region.is_valid_sql(nsn)}")
            parts.append(f"CASE {' '.join(branches)} ELSE FALSE END" if branches else "FALSE")
        return "(" + " AND ".join(f"({p})" for p in parts) + ")"


@lru_cache(maxsize=None)
def _calling_code(code: int) -> _CallingCode | None:
    region_codes = COUNTRY_CODE_TO_REGION_CODE.get(code)
    if not region_codes:
        return None
    main = PhoneMetadata.metadata_for_region_or_calling_code(code, region_code_for_country_code(code))
    if main is None:
        return None
    regions = []
    for region_code in region_codes:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region_code.upper())
        regions.append(None if metadata is None else _region(metadata, region_code, code))
    return _CallingCode(national_prefix=main.national_prefix_for_parsing or None, regions=tuple(regions))


def _split(digits: str) -> tuple[int, str] | None:
    """The calling code (the first 1–3 digits that name one) and the national number."""
    if digits[0] == "0":
        return None
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return code, digits[size:]
    return None


def certified(text: str) -> bool | None:
    """True when phonenumbers would read ``text`` as a valid number with E.164 form ``text``;
    None when this cannot be told without phonenumbers' parser."""
    if not _PLUS_DIGITS.fullmatch(text):
        return None
    split = _split(text[1:])
    if split is None:
        return None
    code, nsn = split
    if not _MIN_NSN <= len(nsn) <= _MAX_NSN:
        return None
    entry = _calling_code(code)
    if entry is None:
        return None
    if entry.prefix_matches(nsn):
        return None  # the parser may strip a national prefix here: let it decide
    region = _pick_region(entry.regions, nsn)
    if region is None or not region.is_valid(nsn):
        return None
    return True


def _pick_region(regions: tuple[_Region | None, ...], nsn: str) -> _Region | None:
    """phonenumbers' region for a number: the only one, else the first whose leading digits match or,
    for regions without leading digits, whose patterns give it a type."""
    if len(regions) == 1:
        return regions[0]
    for region in regions:
        if region is None:
            continue
        if region.leading_digits is not None:
            if region.leads(nsn):
                return region
        elif region.has_type(nsn):
            return region
    return None


def plus_digits_sql(text: str) -> str:
    """SQL: ``text`` is ``+`` and ASCII digits (what ``certified`` considers at all)."""
    return rf"regexp_full_match({text}, '\+[0-9]{{3,249}}')"


def calling_code_sql(text: str) -> str:
    """SQL: the calling code of an ASCII ``+digits`` text (as text), or NULL."""
    by_size: dict[int, list[str]] = {}
    for code in COUNTRY_CODE_TO_REGION_CODE:
        by_size.setdefault(len(str(code)), []).append(_lit(str(code)))
    whens = " ".join(f"WHEN substr({text}, 2, {size}) IN ({', '.join(sorted(codes))}) THEN substr({text}, 2, {size})"
                     for size, codes in sorted(by_size.items()))
    return f"CASE {whens} END"


def certified_sql(text: str, code: str, codes: list[int]) -> str:
    """SQL: ``certified`` of ``text`` (an ASCII ``+digits`` value) whose calling code ``code``
    (``calling_code_sql``) is one of ``codes``; FALSE for any other code."""
    whens = []
    for number in sorted(codes):
        entry = _calling_code(number)
        if entry is not None:
            nsn = f"substr({text}, {2 + len(str(number))})"
            whens.append(f"WHEN {_lit(str(number))} THEN {entry.certified_sql(nsn)}")
    return f"CASE {code} {' '.join(whens)} ELSE FALSE END" if whens else "FALSE"
