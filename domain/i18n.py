"""Locales: matching a language tag to a string table, and money in the store's currency.

A tag is what stores and briefs carry (`es`, `es-MX`, `pt_BR`). Tables are keyed by
language (`es`), optionally by full tag (`pt-br`); a tag no table knows falls back to its
language, then to English. Prices are formatted by CLDR's rules for the locale (babel):
`€699.00` in English, `699,00 €` in German, French or Spanish, `₹520.00` for an Indian store.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from babel import Locale, UnknownLocaleError
from babel.numbers import UnknownCurrencyError, format_currency, format_decimal, get_currency_name

DEFAULT_LOCALE = "en"
_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
T = TypeVar("T")


def normalize(locale: str | None) -> str:
    """`pt_BR` -> `pt-br`; anything that is not a language tag -> `en`."""
    text = (locale or "").strip()
    if not _TAG.fullmatch(text):
        return DEFAULT_LOCALE
    return text.replace("_", "-").lower()


def language(locale: str | None) -> str:
    """The language part of a tag: `es-MX` -> `es`."""
    return normalize(locale).split("-")[0]


def pick(table: Mapping[str, T], locale: str | None) -> T:
    """The entry for `locale`: its full tag, else its language, else English."""
    tag = normalize(locale)
    for key in (tag, tag.split("-")[0], DEFAULT_LOCALE):
        if key in table:
            return table[key]
    raise KeyError(f"string table has no {DEFAULT_LOCALE!r} entry")


@functools.lru_cache(maxsize=256)
def _babel_locale(locale: str) -> Locale:
    tag = normalize(locale)
    for candidate in (tag, tag.split("-")[0]):
        try:
            return Locale.parse(candidate, sep="-")
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse(DEFAULT_LOCALE)


def known_currency(code: str | None) -> bool:
    """True for an ISO 4217 code CLDR knows (`EUR`, `INR`), False for anything else."""
    if not code or not _CURRENCY.fullmatch(code):
        return False
    try:
        get_currency_name(code, locale="en")
    except UnknownCurrencyError:
        return False
    return True


def format_price(amount: str | float | int, currency: str | None, locale: str | None) -> str:
    """`699.00`, `EUR`, `de` -> `699,00 €`; without a known currency, the number alone.

    An amount that is not a number is returned as given (it was merchant data, already plain).
    """
    try:
        value = Decimal(str(amount).strip())
    except (InvalidOperation, ValueError):
        return str(amount)
    if not value.is_finite():
        return str(amount)
    where = _babel_locale(locale or DEFAULT_LOCALE)
    if currency and known_currency(currency.upper()):
        return format_currency(value, currency.upper(), locale=where)
    return format_decimal(value, format="#,##0.00", locale=where)
