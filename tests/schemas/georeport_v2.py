"""JSON Schemas of the Open311 GeoReport v2 documents we answer, written for our tests from the
specification's field lists (Open311 GeoReport v2, https://wiki.open311.org/GeoReport_v2/):
the service list, a service definition, the answer to a filed request, requests and errors.

Required are the fields the specification gives every document of that kind; the others may be
empty (null) or left out. Unlike the specification we refuse fields it does not name
(``additionalProperties``): we send no extensions, so a stray key is a mistake of ours.
Formats are asserted by ``FORMATS``: ``date-time`` is the W3C profile of ISO 8601 with a time
zone, ``uri`` an absolute URI.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker

TEXT_OR_NULL = {"type": ["string", "null"]}
DATETIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}

# GET services: one entry per service (request type).
SERVICE: dict[str, Any] = {
    "type": "object",
    "required": ["service_code", "service_name", "metadata", "type"],
    "additionalProperties": False,
    "properties": {
        "service_code": {"type": "string", "minLength": 1},
        "service_name": {"type": "string"},
        "description": TEXT_OR_NULL,
        # true when the service definition lists attributes to fill in.
        "metadata": {"type": "boolean"},
        "type": {"enum": ["realtime", "batch", "blackbox"]},
        "keywords": TEXT_OR_NULL,  # comma-separated
        "group": TEXT_OR_NULL,
    },
}
SERVICES: dict[str, Any] = {"type": "array", "items": SERVICE}

ATTRIBUTE: dict[str, Any] = {
    "type": "object",
    "required": ["variable", "code", "datatype", "required"],
    "additionalProperties": False,
    "properties": {
        "variable": {"type": "boolean"},
        "code": {"type": "string"},
        "datatype": {
            "enum": ["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
        },
        "required": {"type": "boolean"},
        "datatype_description": TEXT_OR_NULL,
        "order": {"type": ["integer", "null"]},
        "description": TEXT_OR_NULL,
        "values": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "name"],
                "additionalProperties": False,
                "properties": {"key": {"type": "string"}, "name": {"type": "string"}},
            },
        },
    },
}
# GET services/{code}: a single object, not a list.
SERVICE_DEFINITION: dict[str, Any] = {
    "type": "object",
    "required": ["service_code", "attributes"],
    "additionalProperties": False,
    "properties": {
        "service_code": {"type": "string", "minLength": 1},
        "attributes": {"type": "array", "items": ATTRIBUTE},
    },
}

# POST requests: the new request's id, or a token to look it up by later.
RECEIPT: dict[str, Any] = {
    "type": "object",
    "anyOf": [{"required": ["service_request_id"]}, {"required": ["token"]}],
    "additionalProperties": False,
    "properties": {
        "service_request_id": {"type": "string", "minLength": 1},
        "token": {"type": "string"},
        "service_notice": TEXT_OR_NULL,
        "account_id": TEXT_OR_NULL,
    },
}
RECEIPTS: dict[str, Any] = {"type": "array", "items": RECEIPT}

# GET requests and requests/{id}: a list of these.
REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["service_request_id", "status", "service_code", "requested_datetime"],
    "additionalProperties": False,
    "properties": {
        "service_request_id": {"type": "string", "minLength": 1},
        "status": {"enum": ["open", "closed"]},
        "status_notes": TEXT_OR_NULL,
        "service_name": TEXT_OR_NULL,
        "service_code": {"type": "string", "minLength": 1},
        # Free text without markup, at most 4,000 characters.
        "description": {"type": ["string", "null"], "maxLength": 4000},
        "agency_responsible": TEXT_OR_NULL,
        "service_notice": TEXT_OR_NULL,
        "requested_datetime": {"type": "string", "format": "date-time"},
        # For a closed request: when it was closed.
        "updated_datetime": DATETIME_OR_NULL,
        "expected_datetime": DATETIME_OR_NULL,
        "address": TEXT_OR_NULL,
        "address_id": TEXT_OR_NULL,
        "zipcode": TEXT_OR_NULL,
        "lat": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
        "long": {"type": ["number", "null"], "minimum": -180, "maximum": 180},
        "media_url": {"type": ["string", "null"], "format": "uri"},
    },
}
REQUESTS: dict[str, Any] = {"type": "array", "items": REQUEST}

# Any refusal: a non-empty list of errors, each an HTTP status and a sentence.
ERRORS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "additionalProperties": False,
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}

FORMATS = FormatChecker(formats=())
# W3C date-time: a complete date, hours and minutes, optional (fractions of) seconds, a zone.
_W3C_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})", re.ASCII
)


@FORMATS.checks("date-time", raises=ValueError)
def _datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats apply to strings only; "type" judges the rest
    if not _W3C_DATETIME.fullmatch(value):
        return False
    datetime.fromisoformat(value)  # a real day and time, not 2026-02-30T25:00
    return True


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    if not parts.scheme or any(c.isspace() for c in value):
        return False
    return bool(parts.netloc) or parts.scheme not in ("http", "https")


def validate(document: Any, schema: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``document`` fits ``schema``, formats too."""
    Draft202012Validator(schema, format_checker=FORMATS).validate(document)


def schema_for(method: str, path: str, status: int) -> dict[str, Any]:
    """The document an Open311 call answers with, from its method, path and status."""
    if status >= 400:
        return ERRORS
    if "/services/" in path:
        return SERVICE_DEFINITION
    if "/services." in path:
        return SERVICES
    return RECEIPTS if method.lower() == "post" else REQUESTS


def validate_response(method: str, path: str, response: Any) -> None:
    """Check a JSON answer of an Open311 endpoint; XML and empty answers are left alone."""
    if response.get("Content-Type", "").startswith("application/json"):
        validate(response.json(), schema_for(method, path, response.status_code))
