"""Pure CRM rules: the normalised keys duplicate detection compares, periods, money.

No I/O here: the service calls these and unit tests drive them directly.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["company_key", "domain_of_email", "money", "norm_domain", "norm_email", "norm_name", "norm_phone",
           "period_of", "period_range"]

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")
# Legal forms that do not tell two companies apart ("ACME Inc." is "Acme").
_LEGAL = frozenset({"inc", "incorporated", "ltd", "limited", "llc", "llp", "plc", "gmbh", "ag", "sa", "sas", "sarl",
                    "bv", "nv", "oy", "ab", "as", "spa", "srl", "co", "corp", "corporation", "company", "kg", "se",
                    "pty", "pte", "kk", "the"})
# Webmail domains say nothing about a person's company.
FREE_MAIL = frozenset({"gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com",
                       "icloud.com", "me.com", "aol.com", "gmx.de", "gmx.net", "web.de", "proton.me",
                       "protonmail.com", "mail.com", "yandex.ru", "qq.com"})


def norm_email(email: str | None) -> str:
    return (email or "").strip().lower()


def norm_phone(phone: str | None) -> str:
    """Digits only, with a leading 00 read as +: "+49 (30) 1234-567" and "0049301234567" match.
    Fewer than 6 digits are no key at all (extensions, typos)."""
    raw = (phone or "").strip()
    digits = "".join(ch for ch in raw if ch.isdigit())
    if digits.startswith("00"):
        digits = digits[2:]
    return digits if len(digits) >= 6 else ""


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def norm_name(name: str | None) -> str:
    """Case, accents, punctuation and spacing folded: "José  O'Neil" → "jose oneil"."""
    folded = _PUNCT.sub("", _fold(name or ""))
    return _SPACE.sub(" ", folded).strip()


def company_key(name: str | None) -> str:
    """A company's name without its legal form: "ACME, Inc." and "Acme" are one key."""
    words = [w for w in norm_name((name or "").replace("&", " and ")).split(" ") if w and w not in _LEGAL]
    return " ".join(words)


def norm_domain(domain: str | None) -> str:
    low = (domain or "").strip().lower()
    for prefix in ("https://", "http://"):
        low = low.removeprefix(prefix)
    return low.split("/", 1)[0].removeprefix("www.").rstrip(".")


def domain_of_email(email: str | None) -> str:
    e = norm_email(email)
    if "@" not in e:
        return ""
    d = e.rsplit("@", 1)[1]
    return "" if d in FREE_MAIL else d


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def period_of(day: date, period: str, fiscal_start: int = 1) -> str:
    """The period a close date falls in: "2026-11" (month) or "2026-Q4" (quarter of a fiscal
    year that starts in month `fiscal_start`, named by the calendar year it starts in)."""
    if period == "month":
        return f"{day.year:04d}-{day.month:02d}"
    shifted = (day.month - fiscal_start) % 12
    year = day.year if day.month >= fiscal_start else day.year - 1
    return f"{year:04d}-Q{shifted // 3 + 1}"


def period_range(label: str, fiscal_start: int = 1) -> tuple[date, date]:
    """First and last day of a period label made by period_of."""
    if "-Q" in label:
        year, q = int(label[:4]), int(label[-1])
        m0 = (fiscal_start - 1 + (q - 1) * 3) % 12 + 1
        y0 = year + (fiscal_start - 1 + (q - 1) * 3) // 12
        m1, y1 = (m0 + 3 - 1) % 12 + 1, y0 + (m0 + 3 - 1) // 12
        return date(y0, m0, 1), date.fromordinal(date(y1, m1, 1).toordinal() - 1)
    year, month = int(label[:4]), int(label[5:7])
    nxt = date(year + (month // 12), month % 12 + 1, 1)
    return date(year, month, 1), date.fromordinal(nxt.toordinal() - 1)
