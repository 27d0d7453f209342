"""The shape every field of a schema form shares: label, control, hint, inline problem."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static

from console.tui.widgets.schema_rules import MISSING, FieldSpec

Problem = tuple[str, str]
"""(dotted path of the field, what is wrong)"""


def field_label(spec: FieldSpec, label: str | None = None) -> Text:
    text = Text(label or spec.name, style="bold")
    if spec.required and label is None:
        text.append(" *", style="bold red")
    text.append(f"  {spec.type_label}", style="dim")
    return text


class SchemaField(Vertical):
    """One value of a tool's arguments. Subclasses build the control and read it back.

    ``get()`` reads without judging (MISSING when empty); ``check(strict)`` judges,
    shows the problem next to the field and returns every problem below it; ``put()``
    fills the field from a value.
    """

    DEFAULT_CSS = """
    SchemaField { height: auto; margin-bottom: 1; }
    SchemaField .field-label { width: 24; height: 1; padding-right: 1; }
    SchemaField .field-row { height: auto; }
    SchemaField .field-hint { color: $text-muted; height: auto; padding-left: 24; }
    SchemaField .field-problem { color: $error; height: auto; padding-left: 24; display: none; }
    SchemaField .field-problem.shown { display: block; }
    SchemaField.-stacked > .field-label { width: 1fr; }
    SchemaField.-stacked > .field-hint, SchemaField.-stacked > .field-problem { padding-left: 2; }
    """

    def __init__(self, spec: FieldSpec, path: str, *, label: str | None = None, value: Any = MISSING) -> None:
        super().__init__()
        self.spec, self.path, self.label_text = spec, path, label
        self.initial = spec.default if value is MISSING else value
        self.problem = Static("", classes="field-problem")
        self.hint = Static(Text(spec.description), classes="field-hint")
        self.hint.display = bool(spec.description) and label is None

    def get(self) -> Any:
        raise NotImplementedError

    def put(self, value: Any) -> None:
        raise NotImplementedError

    def own_problem(self, strict: bool) -> str | None:
        """What is wrong with this field itself (not its children)."""
        if strict and self.spec.required and self.get() is MISSING:
            return "required"
        return None

    def children_problems(self, strict: bool) -> list[Problem]:
        return []

    def check(self, strict: bool = True) -> list[Problem]:
        problem = self.own_problem(strict)
        self.show_problem(problem)
        found = [(self.path, problem)] if problem else []
        return found + self.children_problems(strict)

    def show_problem(self, text: str | None) -> None:
        self.problem.update(Text(f"✗ {text}") if text else "")
        self.problem.set_class(bool(text), "shown")
        self.set_class(bool(text), "-invalid")

    @property
    def problem_text(self) -> str:
        return str(self.problem.render()).removeprefix("✗ ") if self.problem.has_class("shown") else ""

    def fields(self) -> list[SchemaField]:
        """The fields directly inside this one (for finding a field by path)."""
        return []

    def find(self, path: str) -> SchemaField | None:
        if path == self.path:
            return self
        for child in self.fields():
            if path == child.path or path.startswith(child.path + "."):
                return child.find(path)
        return None


def make_field(spec: FieldSpec, path: str, *, label: str | None = None, value: Any = MISSING) -> SchemaField:
    """The field widget for ``spec``."""
    if spec.kind == "array":
        from console.tui.widgets.schema_array import ArrayField

        return ArrayField(spec, path, label=label, value=value)
    if spec.kind == "object":
        from console.tui.widgets.schema_object import ObjectField

        return ObjectField(spec, path, label=label, value=value)
    if spec.kind == "json":
        from console.tui.widgets.schema_json import JsonField

        return JsonField(spec, path, label=label, value=value)
    from console.tui.widgets.schema_scalar import ScalarField

    return ScalarField(spec, path, label=label, value=value)


def as_text(value: Any) -> str:
    """A value as a field shows it."""
    if value is MISSING or value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)
