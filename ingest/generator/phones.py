"""Valid-looking, unique mobile numbers per country in E.164, without validating every number.

``phonenumbers`` validation costs ~15 µs a number, too slow for millions. Instead we find, per
country, national-number prefixes (all digits but the last four) for which the number is valid
whatever the last four digits are (checked on the extremes 0000 and 9999 and two random suffixes),
then draw unique (prefix, suffix) pairs.
"""

from __future__ import annotations

import numpy as np
import phonenumbers
import polars as pl
from phonenumbers import PhoneNumberType

SUFFIX_DIGITS = 4
# Leading digits of the example number kept fixed when searching prefixes (0: search all digits).
FIXED_LEADING = {"GB": 1, "FR": 1, "DE": 1}


def _valid(country: str, calling_code: int, national: str) -> bool:
    """Whether ``+<code><national>`` is a valid mobile number for ``country``."""
    number = phonenumbers.PhoneNumber(country_code=calling_code, national_number=int(national))
    if not phonenumbers.is_valid_number_for_region(number, country):
        return False
    kind = phonenumbers.number_type(number)
    return kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def valid_prefixes(country: str, needed: int, rng: np.random.Generator) -> tuple[int, list[str]]:
    """Calling code and at least ``needed // 10**4 * 3`` (min 60) prefixes whose every suffix is valid."""
    example = phonenumbers.example_number_for_type(country, PhoneNumberType.MOBILE)
    national = str(example.national_number)
    code = example.country_code
    keep = FIXED_LEADING.get(country, 0)
    free = len(national) - SUFFIX_DIGITS - keep
    target = max(60, 3 * needed // 10**SUFFIX_DIGITS + 1)
    found: list[str] = []
    seen: set[str] = set()
    tries = 0
    while len(found) < target and tries < 200 * target:
        batch = rng.integers(0, 10, size=(256, free))
        probes = rng.integers(0, 10**SUFFIX_DIGITS, size=(256, 2))
        for row, extra in zip(batch, probes):
            tries += 1
            prefix = national[:keep] + "".join(map(str, row.tolist()))
            if prefix in seen or prefix[0] == "0":  # a national number never starts with 0 in E.164
                continue
            seen.add(prefix)
            suffixes = ("0" * SUFFIX_DIGITS, "9" * SUFFIX_DIGITS, f"{extra[0]:0{SUFFIX_DIGITS}d}", f"{extra[1]:0{SUFFIX_DIGITS}d}")
            if all(_valid(country, code, prefix + s) for s in suffixes):
                found.append(prefix)
                if len(found) >= target:
                    break
    if not found:
        raise RuntimeError(f"no valid mobile prefixes found for {country}")
    return code, found


def draw_numbers(country: str, n: int, rng: np.random.Generator) -> pl.Series:
    """``n`` unique E.164 mobile numbers for ``country`` (a polars String series)."""
    if n == 0:
        return pl.Series("phone", [], dtype=pl.String)
    code, prefixes = valid_prefixes(country, n, rng)
    space = len(prefixes) * 10**SUFFIX_DIGITS
    picks = rng.choice(space, size=n, replace=False)
    prefix_idx, suffix = np.divmod(picks, 10**SUFFIX_DIGITS)
    frame = pl.DataFrame({"p": prefix_idx, "s": suffix})
    heads = pl.Series([f"+{code}{p}" for p in prefixes], dtype=pl.String)
    return frame.select(
        pl.concat_str(heads.gather(frame["p"]), pl.col("s").cast(pl.String).str.zfill(SUFFIX_DIGITS)).alias("phone")
    ).to_series()
