"""An object field: its properties grouped, collapsible; the form's root shows them flat."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Collapsible, Static

from console.tui.widgets.schema_field import Problem, SchemaField, field_label, make_field
from console.tui.widgets.schema_rules import MISSING, FieldSpec


class ObjectField(SchemaField):
    DEFAULT_CSS = """
    ObjectField Collapsible { padding-left: 0; border-top: none; background: transparent; }
    ObjectField Collapsible > Contents { padding: 0 0 0 2; }
    ObjectField .empty { color: $text-muted; }
    """

    def __init__(self, spec: FieldSpec, path: str, *, label: str | None = None, value: Any = MISSING,
                 flat: bool = False) -> None:
        super().__init__(spec, path, label=label, value=value)
        self.add_class("-stacked")
        self.flat = flat
        initial = self.initial if isinstance(self.initial, dict) else {}
        prefix = f"{path}." if path else ""
        self.members: list[SchemaField] = [
            make_field(prop, prefix + prop.name, value=initial.get(prop.name, MISSING)) for prop in spec.properties
        ]

    def compose(self) -> ComposeResult:
        if self.flat:
            if not self.members:
                yield Static("this tool takes no arguments", classes="empty")
            yield from self.members
            return
        yield self.hint
        title = field_label(self.spec, self.label_text).plain
        with Collapsible(title=title, collapsed=False):
            if not self.members:
                yield Static("no properties: use raw JSON to send any", classes="empty")
            yield from self.members
        yield self.problem

    def fields(self) -> list[SchemaField]:
        return list(self.members)

    def get(self) -> Any:
        value = {}
        for member in self.members:
            got = member.get()
            if got is not MISSING:
                value[member.spec.name] = got
        if not value and not self.spec.required:
            return MISSING
        return value

    def put(self, value: Any) -> None:
        values = value if isinstance(value, dict) else {}
        for member in self.members:
            member.put(values.get(member.spec.name, MISSING))

    def own_problem(self, strict: bool) -> str | None:
        return None  # an object is as good as its members

    def children_problems(self, strict: bool) -> list[Problem]:
        if not self.spec.required and self.get() is MISSING:
            for member in self.members:
                member.check(strict=False)  # an optional object left empty is fine as a whole
            return []
        found: list[Problem] = []
        for member in self.members:
            found += member.check(strict)
        return found
