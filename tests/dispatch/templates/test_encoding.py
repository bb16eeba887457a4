"""SMS encoding and segments, checked against counts worked out by hand from 3GPP TS 23.038."""

import pytest

from dispatch.templates.encoding import encode


@pytest.mark.parametrize("text, encoding, units, segments", [
    ("Your parcel is on its way", "gsm7", 25, 1),
    ("a" * 160, "gsm7", 160, 1),                 # the single-segment limit exactly
    ("a" * 161, "gsm7", 161, 2),                 # one more: concatenated, 153 per segment
    ("a" * 306, "gsm7", 306, 2),
    ("a" * 307, "gsm7", 307, 3),
    ("Pay €20 [now]", "gsm7", 16, 1),             # €, [ and ] are extension characters: two septets each
    ("€" * 80, "gsm7", 160, 1),
    ("€" * 81, "gsm7", 162, 2),
    ("a" * 152 + "€" + "a" * 10, "gsm7", 164, 2),  # the € would straddle 153: it opens segment 2
    ("您的包裹已发货", "ucs2", 7, 1),              # Chinese: UCS-2
    ("包" * 70, "ucs2", 70, 1),
    ("包" * 71, "ucs2", 71, 2),                   # 67 per segment when concatenated
    ("包" * 134, "ucs2", 134, 2),
    ("包" * 135, "ucs2", 135, 3),
    ("Thanks 👍", "ucs2", 9, 1),                  # an emoji is a surrogate pair: two units
    ("👍" * 35, "ucs2", 70, 1),
    ("👍" * 36, "ucs2", 72, 2),
    ("a" * 66 + "👍", "ucs2", 68, 1),             # 68 units still fit one 70-unit message
    ("Grüße aus Köln", "gsm7", 14, 1),            # ü, ö, ß are in the GSM basic table
    ("Hello ’quotes’", "ucs2", 14, 1),            # a curly quote is not GSM-7
])
def test_encoding_units_and_segments(text, encoding, units, segments):
    result = encode(text)
    assert (result.encoding, result.units, result.segments) == (encoding, units, segments)


def test_the_character_that_forces_ucs2_is_named():
    assert encode("Hi Ana, parcel ✓ shipped").first_non_gsm == "✓"
    assert encode("plain text").first_non_gsm is None


def test_a_segment_boundary_never_splits_an_emoji():
    # 134 units would be exactly two 67-unit parts, but the pair at units 67-68 cannot be cut:
    # part one holds 66, part two the pair and 65, and one unit is left for a third
    assert encode("x" * 66 + "😀" + "y" * 66).segments == 3
    assert encode("x" * 65 + "😀" + "y" * 67).segments == 2  # the pair ends part one exactly


def test_a_segment_boundary_never_splits_an_extension_character():
    assert encode("a" * 152 + "€" + "a" * 152).segments == 3  # 306 septets, but € cannot straddle 153
    assert encode("a" * 151 + "€" + "a" * 153).segments == 2
