"""An array field: its items, each its own sub-form, added and removed with buttons."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from console.tui.widgets.schema_field import Problem, SchemaField, field_label, make_field
from console.tui.widgets.schema_rules import MISSING, FieldSpec, check_items


class ArrayItem(Horizontal):
    """One item: its field and the button that removes it."""

    DEFAULT_CSS = """
    ArrayItem { height: auto; }
    ArrayItem > SchemaField { width: 1fr; margin-bottom: 0; }
    ArrayItem .remove { min-width: 5; width: 5; margin-left: 1; }
    """

    def __init__(self, field: SchemaField) -> None:
        super().__init__()
        self.field = field

    def compose(self) -> ComposeResult:
        yield self.field
        yield Button("✕", classes="remove", compact=True, tooltip="Remove this item")


class ArrayField(SchemaField):
    DEFAULT_CSS = """
    ArrayField { padding-left: 0; }
    ArrayField .items { height: auto; padding-left: 2; }
    ArrayItem > SchemaField > .field-row > .field-label { width: 6; }
    ArrayItem > SchemaField > .field-hint, ArrayItem > SchemaField > .field-problem { padding-left: 6; }
    ArrayField .add { margin-left: 2; }
    """

    def __init__(self, spec: FieldSpec, path: str, *, label: str | None = None, value: Any = MISSING) -> None:
        super().__init__(spec, path, label=label, value=value)
        self.add_class("-stacked")
        assert spec.items is not None
        self.item_spec: FieldSpec = spec.items
        self.items_box = Vertical(classes="items")
        if isinstance(self.initial, list):
            start = list(self.initial)
        else:
            count = max(int(spec.schema.get("minItems", 0)), 1 if spec.required else 0)
            start = [MISSING] * count
        self.items: list[ArrayItem] = [self._item(i, v) for i, v in enumerate(start)]

    def _item(self, index: int, value: Any = MISSING) -> ArrayItem:
        return ArrayItem(make_field(self.item_spec, f"{self.path}.{index}", label=str(index + 1), value=value))

    def compose(self) -> ComposeResult:
        yield Static(field_label(self.spec, self.label_text), classes="field-label")
        yield self.hint
        with self.items_box:
            yield from self.items
        yield Button("+ add item", classes="add", compact=True)
        yield self.problem

    def fields(self) -> list[SchemaField]:
        return [item.field for item in self.items]

    def get(self) -> Any:
        values = [item.field.get() for item in self.items]
        if not values and not self.spec.required:
            return MISSING
        return [None if v is MISSING else v for v in values]

    def put(self, value: Any) -> None:
        for item in self.items:
            item.remove()
        values = value if isinstance(value, list) else []
        self.items = [self._item(i, v) for i, v in enumerate(values)]
        if self.is_mounted:
            self.items_box.mount_all(self.items)

    def own_problem(self, strict: bool) -> str | None:
        if not self.items and not self.spec.required:
            return None
        return check_items(self.spec, len(self.items))

    def children_problems(self, strict: bool) -> list[Problem]:
        found: list[Problem] = []
        for item in self.items:
            found += item.field.check(strict)
        return found

    def add_item(self) -> SchemaField:
        item = self._item(len(self.items))
        self.items.append(item)
        self.items_box.mount(item)
        self.check(strict=False)
        return item.field

    def remove_item(self, index: int) -> None:
        self.items.pop(index).remove()
        values = [item.field.get() for item in self.items]
        self.put(values)  # renumber: paths and labels follow the positions
        self.check(strict=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.has_class("add"):
            field = self.add_item()
            self.call_after_refresh(_focus_first, field)
            return
        for index, item in enumerate(self.items):
            if event.button in item.children:
                self.remove_item(index)
                return


def _focus_first(field: SchemaField) -> None:
    """Put the cursor in the first control of a field just added."""
    for widget in field.query("Input, Select, Checkbox, TextArea, Button"):
        if widget.focusable:
            widget.focus()
            return
