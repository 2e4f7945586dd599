"""Standardize person columns for linkage: names, nicknames, dates, addresses, phonetic codes, SSNs.

Each rule runs once per distinct value of a column (names, dates and places repeat), never once per record.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from typing import Any

import jellyfish
import pyarrow as pa
import pyarrow.compute as pc

from sharewise.linkage.tables import directionals, nicknames, street_suffixes, unit_designators

_NOT_LETTER = re.compile(r"[^\w ]+|[\d_]+")  # anything but letters (of any script) and spaces
_SPACES = re.compile(r"\s+")
_SURNAME_PARTICLES = frozenset(
    {"de", "del", "della", "der", "di", "da", "du", "la", "le", "van", "von", "st", "y", "e"}
)
_NAME_NULLS = frozenset({"", "unknown", "unk", "none", "null", "na", "nfn", "nln", "baby", "infant", "xxx"})
_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ]
    )
    for m in names
}


def fold(text: str) -> str:
    """Lower case, accents removed (José -> jose), ligatures expanded; letters without a Latin form (李) kept."""
    decomposed = unicodedata.normalize("NFKD", text.replace("ß", "ss").replace("ø", "o").replace("Ø", "O"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def name_tokens(text: str | None) -> list[str]:
    """A name's words: folded, punctuation and hyphens as separators, apostrophes dropped (O'Brien -> obrien)."""
    if not text:
        return []
    folded = fold(text).replace("'", "").replace("`", "")
    tokens = _SPACES.split(_NOT_LETTER.sub(" ", folded).strip())
    return [t for t in tokens if t]


def standard_name(text: str | None) -> str | None:
    """A name as one comparable string: folded words joined (Mary-Ann -> maryann); placeholders are null."""
    tokens = name_tokens(text)
    joined = "".join(tokens)
    return None if joined in _NAME_NULLS else joined


def surname_parts(text: str | None) -> list[str]:
    """The parts of a compound or hyphenated surname, without particles (Garcia-Lopez -> [garcia, lopez])."""
    tokens = [t for t in name_tokens(text) if t not in _SURNAME_PARTICLES and len(t) > 1]
    return sorted(set(tokens))


def formal_names(text: str | None) -> list[str]:
    """The formal names a given name can stand for, itself included (bill -> [bill, william])."""
    tokens = name_tokens(text)
    if not tokens:
        return []
    first = tokens[0]
    return sorted({first, *nicknames().get(first, ())})


def phonetic(text: str | None) -> str | None:
    """The Metaphone code of a standardized name (null when there is none)."""
    return jellyfish.metaphone(text).upper() or None if text else None


def parse_date(text: str | None, dayfirst: bool = False) -> str | None:
    """A date of birth in any common layout, as ISO YYYY-MM-DD; ambiguous a/b/yyyy is month first unless dayfirst."""
    if not text:
        return None
    s = fold(text).strip()
    s = s.split("t")[0].split(" 00:")[0].strip()  # drop a time part
    year = month = day = None
    if (m := re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", s)) or (
        m := re.fullmatch(r"(\d{4})(\d{2})(\d{2})", s)
    ):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    elif m := re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{2}|\d{4})", s):
        a, b, y = int(m[1]), int(m[2]), int(m[3])
        if len(m[3]) == 2:
            y += 1900 if y > 30 else 2000
        first_is_day = dayfirst or a > 12
        if b > 12:
            first_is_day = False
        day, month = (a, b) if first_is_day else (b, a)
        year = y
    elif m := re.fullmatch(r"(\d{1,2})[ -]?([a-z]+)[ -,]*(\d{4})", s):
        day, month, year = int(m[1]), _MONTHS.get(m[2], 0), int(m[3])
    elif m := re.fullmatch(r"([a-z]+)[ .-]*(\d{1,2})(?:st|nd|rd|th)?[ ,-]*(\d{4})", s):
        month, day, year = _MONTHS.get(m[1], 0), int(m[2]), int(m[3])
    if year is None or month is None or day is None:
        return None
    try:
        value = dt.date(year, month, day)
    except ValueError:
        # A day/month transposition that made an impossible date (1990-25-03): swap it back.
        try:
            value = dt.date(year, day, month)
        except ValueError:
            return None
    if not dt.date(1880, 1, 1) <= value <= dt.date(2100, 1, 1):
        return None
    return value.isoformat()


def standard_sex(text: str | None) -> str | None:
    if not text:
        return None
    s = fold(text).strip()
    if s in ("m", "male", "man", "boy", "1"):
        return "M"
    if s in ("f", "female", "woman", "girl", "2"):
        return "F"
    return None


def standard_ssn(text: str | None) -> str | None:
    """Digits of an SSN (or another national id); placeholders such as 000000000 or 123456789 are null."""
    if not text:
        return None
    digits = re.sub(r"\D", "", text)
    if len(digits) < 4 or len(set(digits)) == 1 or digits in ("123456789", "987654321"):
        return None
    if len(digits) == 9 and (digits[:3] in ("000", "666") or digits[3:5] == "00" or digits[5:] == "0000"):
        return None
    return digits


def standard_street(text: str | None) -> str | None:
    """A street address in USPS style: upper case, standard suffix, directional and unit designator."""
    if not text:
        return None
    s = fold(text).replace("#", " # ")
    tokens = [t for t in _SPACES.split(re.sub(r"[^a-z0-9# ]+", " ", s).strip()) if t]
    if not tokens:
        return None
    suffixes, units, dirs = street_suffixes(), unit_designators(), directionals()
    out: list[str] = []
    unit_at = None
    for i, token in enumerate(tokens):
        if token == "#" and unit_at is not None and unit_at == len(out) - 1:
            continue  # "apt #4": the designator already says it
        if token in units and i > 0 and unit_at is None:
            unit_at = len(out)
            out.append(units[token])
        elif unit_at is None and token in dirs and (i == 1 or i == len(tokens) - 1):
            out.append(dirs[token])
        elif unit_at is None and token in suffixes and i > 0:
            out.append(suffixes[token])
        else:
            out.append(token.upper())
    return " ".join(out)


def street_without_unit(street: str | None) -> str | None:
    if not street:
        return None
    words = street.split(" ")
    standard_units = set(unit_designators().values())
    for i, w in enumerate(words):
        if i > 0 and w in standard_units:
            return " ".join(words[:i]) or None
    return street


def house_number(street: str | None) -> str | None:
    if not street:
        return None
    first = street.split(" ", 1)[0]
    return first if first[:1].isdigit() else None


def standard_place(text: str | None) -> str | None:
    tokens = name_tokens(text)
    return " ".join(tokens).upper() or None


def standard_zip(text: str | None) -> str | None:
    if not text:
        return None
    digits = re.sub(r"\D", "", text)
    return digits[:5] if len(digits) >= 4 else None


def standard_phone(text: str | None) -> str | None:
    if not text:
        return None
    digits = re.sub(r"\D", "", text)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits if len(digits) >= 7 and len(set(digits)) > 1 else None


def map_distinct(column: pa.Array | pa.ChunkedArray, fn: Callable[[Any], Any], type_: pa.DataType) -> pa.Array:
    """Apply fn once per distinct value of a column and spread the results back (nulls go through fn too)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    uniques = pc.unique(array)
    mapped = pa.array([fn(v) for v in uniques.to_pylist()], type=type_)
    positions = pc.index_in(array, value_set=uniques, skip_nulls=False)
    return mapped.take(positions)


PREPARED_COLUMNS: tuple[str, ...] = (
    "record_id",
    "given_std",
    "given_formal",
    "given_phon",
    "middle_std",
    "middle_initial",
    "surname_std",
    "surname_parts",
    "surname_phon",
    "dob",
    "dob_year",
    "sex",
    "ssn",
    "ssn_last4",
    "street_std",
    "house_number",
    "city_std",
    "state_std",
    "zip",
    "phone",
)


def prepare(people: pa.Table, dayfirst: bool = False) -> pa.Table:
    """The standard person columns, prepared for comparison (see PREPARED_COLUMNS)."""
    text, texts = pa.string(), pa.list_(pa.string())
    given = map_distinct(people.column("given_name"), standard_name, text)
    middle = map_distinct(people.column("middle_name"), standard_name, text)
    surname = map_distinct(people.column("surname"), standard_name, text)
    dob = map_distinct(people.column("dob"), lambda v: parse_date(v, dayfirst), text)
    ssn = map_distinct(people.column("ssn"), standard_ssn, text)
    street = map_distinct(people.column("street_address"), standard_street, text)
    columns: dict[str, pa.Array] = {
        "record_id": people.column("record_id").combine_chunks(),
        "given_std": given,
        "given_formal": map_distinct(people.column("given_name"), formal_names, texts),
        "given_phon": map_distinct(given, phonetic, text),
        "middle_std": middle,
        "middle_initial": pc.utf8_slice_codeunits(middle, 0, 1),
        "surname_std": surname,
        "surname_parts": map_distinct(people.column("surname"), surname_parts, texts),
        "surname_phon": map_distinct(surname, phonetic, text),
        "dob": dob,
        "dob_year": pc.utf8_slice_codeunits(dob, 0, 4),
        "sex": map_distinct(people.column("sex"), standard_sex, text),
        "ssn": ssn,
        "ssn_last4": pc.utf8_slice_codeunits(ssn, -4, 2**31 - 1),
        "street_std": map_distinct(street, street_without_unit, text),
        "house_number": map_distinct(street, house_number, text),
        "city_std": map_distinct(people.column("city"), standard_place, text),
        "state_std": map_distinct(people.column("state"), standard_place, text),
        "zip": map_distinct(people.column("zip"), standard_zip, text),
        "phone": map_distinct(people.column("phone"), standard_phone, text),
    }
    return pa.table(columns)
