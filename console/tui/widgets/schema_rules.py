"""A tool's input JSON Schema reduced to what a form shows and checks (no Textual).

Real servers' schemas use: plain types with constraints, ``enum``, arrays of strings or
of objects, nested objects, ``$ref`` into ``$defs``, ``anyOf [T, null]`` for optional
values (pydantic), and type lists like ``["boolean", "string"]``. Whatever a form cannot
model (a union of objects, a free ``{}``) becomes a JSON field checked against its schema.
"""

from __future__ import annotations

import ipaddress
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from urllib.parse import urlparse

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False})()
"""A field left empty: it is not sent at all."""

SCALARS = ("string", "number", "integer", "boolean")
MAX_DEPTH = 8


@dataclass
class FieldSpec:
    kind: str
    """string | number | integer | boolean | enum | array | object | json"""
    name: str
    schema: dict[str, Any]
    """The resolved sub-schema (``$ref`` followed, ``anyOf [T, null]`` unwrapped)."""
    required: bool = False
    nullable: bool = False
    default: Any = MISSING
    options: list[Any] = field(default_factory=list)
    """Allowed values of an enum."""
    items: FieldSpec | None = None
    properties: list[FieldSpec] = field(default_factory=list)

    @property
    def title(self) -> str:
        return str(self.schema.get("title") or self.name)

    @property
    def description(self) -> str:
        return str(self.schema.get("description") or "")

    @property
    def type_label(self) -> str:
        if self.kind == "enum":
            return "one of"
        if self.kind == "array" and self.items is not None:
            return f"list of {self.items.type_label}"
        return {"json": "JSON"}.get(self.kind, self.kind)


def resolve(schema: Any, root: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/X``), keeping sibling keywords."""
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#") or depth > MAX_DEPTH:
        return schema
    target: Any = root
    for part in ref.lstrip("#").split("/"):
        if part:
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
    merged = {**resolve(target, root, depth + 1), **{k: v for k, v in schema.items() if k != "$ref"}}
    return merged


def spec_for(name: str, schema: Any, root: dict[str, Any], required: bool = False, depth: int = 0) -> FieldSpec:
    s = resolve(schema, root)
    nullable = False
    for key in ("anyOf", "oneOf"):
        # Beside a type of its own, anyOf only adds constraints: the whole-value check sees to them.
        if isinstance(s.get(key), list) and "type" not in s and "properties" not in s:
            options = [resolve(option, root) for option in s[key]]
            real = [option for option in options if option.get("type") != "null"]
            nullable = len(real) < len(options)
            if len(real) != 1:
                return FieldSpec("json", name, s, required, nullable, s.get("default", MISSING))
            s = {**{k: v for k, v in s.items() if k != key}, **real[0]}
    kind = s.get("type")
    if isinstance(kind, list):
        nullable = nullable or "null" in kind
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if kinds else None
    default = s.get("default", MISSING)
    if default is None and nullable:
        default = MISSING  # "null by default" is what leaving the field empty means
    spec = FieldSpec("json", name, s, required, nullable, default)
    if depth > MAX_DEPTH:
        return spec
    if isinstance(s.get("enum"), list) and s["enum"]:
        spec.kind, spec.options = "enum", [v for v in s["enum"] if v is not None]
    elif "const" in s:
        spec.kind, spec.options = "enum", [s["const"]]
    elif kind in SCALARS:
        spec.kind = kind
    elif kind == "array" or (kind is None and "items" in s):
        spec.kind = "array"
        items = s.get("items", {})
        spec.items = spec_for("item", items if isinstance(items, dict) else {}, root, True, depth + 1)
    elif kind == "object" or (kind is None and "properties" in s):
        spec.kind = "object"
        spec.properties = object_properties(s, root, depth + 1)
    return spec


def object_properties(schema: dict[str, Any], root: dict[str, Any], depth: int = 0) -> list[FieldSpec]:
    """The properties of an object schema: required ones first, each group in schema order."""
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    specs = [spec_for(str(name), sub, root, name in required, depth) for name, sub in props.items()]
    return [s for s in specs if s.required] + [s for s in specs if not s.required]


def root_spec(schema: dict[str, Any]) -> FieldSpec:
    spec = spec_for("arguments", schema or {"type": "object"}, schema or {}, True)
    if spec.kind != "object":
        spec = FieldSpec("object", "arguments", {"type": "object"}, True)
    return spec


# -- checks ----------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HOST = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def _uri(text: str) -> bool:
    parsed = urlparse(text)
    return bool(parsed.scheme) and bool(parsed.netloc or parsed.path) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*$", parsed.scheme) is not None


def _parses(parse: Any) -> Any:
    def check(text: str) -> bool:
        try:
            parse(text)
        except ValueError:
            return False
        return True

    return check


FORMATS: dict[str, tuple[Any, str]] = {
    "uri": (_uri, "a URI, e.g. https://example.org/page"),
    "url": (_uri, "a URL, e.g. https://example.org/page"),
    "email": (lambda t: bool(_EMAIL.match(t)), "an email address"),
    "date-time": (_parses(lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))), "a date-time, e.g. 2026-01-31T14:30:00Z"),
    "date": (_parses(date.fromisoformat), "a date, e.g. 2026-01-31"),
    "time": (_parses(lambda t: time.fromisoformat(t.replace("Z", "+00:00"))), "a time, e.g. 14:30:00"),
    "uuid": (_parses(uuid.UUID), "a UUID"),
    "ipv4": (_parses(ipaddress.IPv4Address), "an IPv4 address"),
    "ipv6": (_parses(ipaddress.IPv6Address), "an IPv6 address"),
    "hostname": (lambda t: bool(_HOST.match(t)), "a host name"),
}


def _count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_string(spec: FieldSpec, text: str) -> str | None:
    s = spec.schema
    if "minLength" in s and len(text) < s["minLength"]:
        return f"at least {s['minLength']} character(s)"
    if "maxLength" in s and len(text) > s["maxLength"]:
        return f"at most {s['maxLength']} character(s)"
    pattern = s.get("pattern")
    if isinstance(pattern, str):
        try:
            if re.search(pattern, text) is None:
                return f"must match {pattern}"
        except re.error:
            pass  # a pattern Python cannot read is the server's to check
    fmt = FORMATS.get(str(s.get("format", "")))
    if fmt is not None and not fmt[0](text):
        return f"not {fmt[1]}"
    return None


def parse_number(spec: FieldSpec, text: str) -> tuple[Any, str | None]:
    """Text typed into a number field: (value, None) or (MISSING, problem)."""
    text = text.strip()
    try:
        value: float | int = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return MISSING, "not a whole number" if spec.kind == "integer" else "not a number"
        if not math.isfinite(value):
            return MISSING, "not a finite number"
        if spec.kind == "integer":
            if not value.is_integer():
                return MISSING, "not a whole number"
            value = int(value)
    return value, check_number(spec, value)


def check_number(spec: FieldSpec, value: float) -> str | None:
    s = spec.schema
    if "minimum" in s and value < s["minimum"]:
        return f"must be at least {_count(s['minimum'])}"
    if "maximum" in s and value > s["maximum"]:
        return f"must be at most {_count(s['maximum'])}"
    low, high = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
    if isinstance(low, int | float) and not isinstance(low, bool) and value <= low:
        return f"must be more than {_count(low)}"
    if isinstance(high, int | float) and not isinstance(high, bool) and value >= high:
        return f"must be less than {_count(high)}"
    step = s.get("multipleOf")
    if isinstance(step, int | float) and step and not math.isclose(value / step, round(value / step)):
        return f"must be a multiple of {_count(step)}"
    return None


def check_items(spec: FieldSpec, count: int) -> str | None:
    s = spec.schema
    if "minItems" in s and count < s["minItems"]:
        return f"at least {s['minItems']} item(s)"
    if "maxItems" in s and count > s["maxItems"]:
        return f"at most {s['maxItems']} item(s)"
    return None


def schema_problems(schema: dict[str, Any], value: Any) -> list[tuple[str, str]]:
    """Everything ``jsonschema`` finds wrong with ``value``: (dotted path, message)."""
    from jsonschema import validators

    try:
        validator_class = validators.validator_for(schema)
        validator_class.check_schema(schema)
    except Exception:  # noqa: BLE001 - a schema jsonschema cannot read is the server's to check
        return []
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    try:
        errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    except Exception:  # noqa: BLE001 - e.g. a $ref this sub-schema cannot resolve on its own
        return []
    return [(".".join(str(p) for p in error.absolute_path), error.message) for error in errors]
