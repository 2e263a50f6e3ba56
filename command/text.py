"""Text as PostgreSQL can keep it: the checks and bounds that ingest, the services and the
HTTP layer share. Pure functions."""

from __future__ import annotations

import hashlib
import re
from typing import Any

_DIGEST_CHARS = 16
# Characters XML 1.0 does not allow at all (ElementTree writes them raw and the document no
# longer parses): the C0 controls but tab, newline and carriage return, and U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def storable(text: str) -> bool:
    """No NUL and no lone UTF-16 surrogate: PostgreSQL's text holds neither."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def all_storable(data: Any) -> bool:
    """Whether every string (keys included) of decoded JSON is :func:`storable`. Walks without
    recursion, so a deeply nested document cannot make the check itself fail."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if not storable(value):
                return False
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True


def bounded_key(key: str, limit: int) -> str:
    """``key`` within ``limit`` characters, stable and distinct: a longer one keeps its start
    and ends in ``~`` and 16 hex digits of the SHA-256 of the whole key."""
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:_DIGEST_CHARS]
    return f"{key[: limit - _DIGEST_CHARS - 1]}~{digest}"


def xml_text(text: str) -> str:
    """``text`` without the characters an XML 1.0 document cannot hold (CAP, Open311 XML)."""
    return _NOT_XML.sub("", text)


_COUNTRY_CODE = "86"


def phone_masked(phone: str) -> str:
    """A caller's phone number as screens show it: 138****5678. A mobile number (11 digits, or
    13 with China's country code) keeps its first three and last four digits; a shorter number
    (a landline without area code) keeps only its last four, and one of fewer than eight digits
    shows none: at least four digits are always hidden. Anything but digits is dropped; no
    digits gives ""."""
    digits = "".join(ch for ch in phone if ch.isascii() and ch.isdigit())
    if len(digits) == 13 and digits.startswith(_COUNTRY_CODE):
        digits = digits[len(_COUNTRY_CODE) :]
    if not digits:
        return ""
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) >= 8:
        return f"****{digits[-4:]}"
    return "****"
