"""A value the form cannot model (a union of objects, a free ``{}``): typed as JSON,
checked against its own schema."""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static, TextArea

from console.tui.widgets.schema_field import SchemaField, field_label
from console.tui.widgets.schema_rules import MISSING, FieldSpec, schema_problems


class JsonField(SchemaField):
    DEFAULT_CSS = """
    JsonField TextArea { width: 1fr; height: 4; border: none; padding: 0; background: $panel; }
    JsonField TextArea:focus { border: none; background: $primary 20%; }
    JsonField.-invalid TextArea { background: $error 20%; }
    """

    def __init__(self, spec: FieldSpec, path: str, *, label: str | None = None, value: Any = MISSING) -> None:
        super().__init__(spec, path, label=label, value=value)
        text = "" if self.initial is MISSING else json.dumps(self.initial, indent=1, ensure_ascii=False)
        self.editor = TextArea(text, soft_wrap=True, show_line_numbers=False, compact=True,
                               placeholder="JSON", tab_behavior="focus")

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield Static(field_label(self.spec, self.label_text), classes="field-label")
            yield self.editor
        yield self.hint
        yield self.problem

    def _parsed(self) -> tuple[Any, str | None]:
        text = self.editor.text.strip()
        if not text:
            return MISSING, None
        try:
            return json.loads(text), None
        except ValueError as exc:
            return MISSING, f"not valid JSON: {exc}"

    def get(self) -> Any:
        return self._parsed()[0]

    def put(self, value: Any) -> None:
        self.editor.text = "" if value is MISSING else json.dumps(value, indent=1, ensure_ascii=False)

    def own_problem(self, strict: bool) -> str | None:
        value, problem = self._parsed()
        if problem:
            return problem
        if value is MISSING:
            return super().own_problem(strict)
        if value is None and self.spec.nullable:
            return None
        found = schema_problems(self.spec.schema, value)
        return "; ".join(f"{path}: {message}" if path else message for path, message in found[:3]) or None

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self.check(strict=False)
