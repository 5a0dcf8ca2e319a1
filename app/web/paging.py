"""Page parameters of every list call (the TFC API's ``page[number]``/``page[size]``, the management API's
``page``/``page_size``), parsed in one place so that no page reaches a database as an offset it cannot hold."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.errors import InvalidInput

# A million pages of the largest page size is far past any listing, and keeps every offset within a 32-bit
# integer: PostgreSQL and MariaDB refuse larger OFFSETs than BIGINT, SQLite's driver raises on them.
MAX_PAGE_NUMBER = 1_000_000


@dataclass(frozen=True)
class Page:
    """A page number (from 1) and size."""

    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def parse_page(
    number: str | None,
    size: str | None,
    *,
    names: tuple[str, str],
    default_size: int,
    max_size: int,
    lenient: bool,
) -> Page:
    """The page asked for; a page number above ``MAX_PAGE_NUMBER`` is always a 400.

    ``lenient`` (the TFC API, as TFE does) falls back to the defaults for values that are not positive integers
    and caps the size at ``max_size``; otherwise (the management API) each of those is a 400 naming the rule.
    """
    number_name, size_name = names
    page_number = _positive(number, 1, number_name, lenient)
    if page_number > MAX_PAGE_NUMBER:
        raise InvalidInput(f"{number_name} must be at most {MAX_PAGE_NUMBER}")
    page_size = _positive(size, default_size, size_name, lenient)
    if page_size > max_size:
        if not lenient:
            raise InvalidInput(f"{size_name} must be between 1 and {max_size}")
        page_size = max_size
    return Page(page_number, page_size)


def _positive(raw: str | None, default: int, name: str, lenient: bool) -> int:
    text = (raw or "").strip()
    if not text:
        return default
    if text.isascii() and text.isdigit():
        digits = text.lstrip("0")
        # int() refuses strings of thousands of digits; anything past 20 digits is simply too large.
        value = int(digits or "0") if len(digits) <= 20 else 10**20
        if value > 0:
            return value
    if lenient:
        return default
    raise InvalidInput(f"{name} must be a positive integer")
