"""A string, number, integer, boolean or enum field: one control on the label's line."""

from __future__ import annotations

import re
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Checkbox, Input, Select, Static

from console.tui.widgets.schema_field import SchemaField, as_text, field_label
from console.tui.widgets.schema_rules import FORMATS, MISSING, FieldSpec, check_string, parse_number

SECRETISH = re.compile(r"(secret|token|passw|passphrase|api[_-]?key|private|credential)", re.I)
"""Arguments with such names are typed masked: secrets are never shown on screen."""


class ScalarField(SchemaField):
    DEFAULT_CSS = """
    ScalarField Input { width: 1fr; background: $panel; }
    ScalarField Input:focus { background: $primary 20%; }
    ScalarField.-invalid Input { background: $error 20%; }
    ScalarField Select { width: 1fr; }
    ScalarField Checkbox { width: auto; background: transparent; }
    """

    def __init__(self, spec: FieldSpec, path: str, *, label: str | None = None, value: Any = MISSING) -> None:
        super().__init__(spec, path, label=label, value=value)
        kind, initial = spec.kind, self.initial
        self.control: Input | Select[int] | Checkbox
        self.touched = initial is not MISSING or spec.required
        """A boolean is sent only once it was set (or it is required or has a default)."""
        if kind == "boolean":
            self.control = Checkbox("", bool(initial) if initial is not MISSING else False, compact=True)
        elif kind == "enum":
            options = [(as_text(option) if not isinstance(option, str) else option, i)
                       for i, option in enumerate(spec.options)]
            chosen = spec.options.index(initial) if initial in spec.options else Select.NULL
            self.control = Select(options, value=chosen, prompt="choose…" if spec.required else "not sent",
                                  compact=True)
        else:
            hint = FORMATS.get(str(spec.schema.get("format", "")))
            self.control = Input(
                as_text(initial), placeholder=hint[1] if hint else "", compact=True,
                type="integer" if kind == "integer" else "number" if kind == "number" else "text",
                password=kind == "string" and bool(SECRETISH.search(spec.name)),
            )

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield Static(field_label(self.spec, self.label_text), classes="field-label")
            yield self.control
        yield self.hint
        yield self.problem

    def on_mount(self) -> None:
        self._show_state()

    def _show_state(self) -> None:
        if isinstance(self.control, Checkbox):
            self.control.label = ("true" if self.control.value else "false") if self.touched else "not sent"

    def get(self) -> Any:
        control = self.control
        if isinstance(control, Checkbox):
            return control.value if self.touched else MISSING
        if isinstance(control, Select):
            return self.spec.options[control.value] if isinstance(control.value, int) else MISSING
        text = control.value
        if text == "":
            return MISSING
        if self.spec.kind in ("number", "integer"):
            return parse_number(self.spec, text)[0]
        return text

    def put(self, value: Any) -> None:
        control = self.control
        if isinstance(control, Checkbox):
            self.touched = value is not MISSING or self.spec.required
            with control.prevent(Checkbox.Changed):
                control.value = bool(value) if value is not MISSING else False
            self._show_state()
        elif isinstance(control, Select):
            if value in self.spec.options:
                control.value = self.spec.options.index(value)
            else:
                control.clear()
        else:
            control.value = as_text(value)

    def own_problem(self, strict: bool) -> str | None:
        control = self.control
        if isinstance(control, Input) and control.value != "":
            if self.spec.kind in ("number", "integer"):
                return parse_number(self.spec, control.value)[1]
            return check_string(self.spec, control.value)
        return super().own_problem(strict)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.check(strict=False)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.check(strict=False)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self.touched = True
        self._show_state()
