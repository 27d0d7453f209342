"""A form generated from a tool's input JSON Schema, with a raw JSON mode.

Every field shows what is wrong with it next to it, as it is typed and again before
anything is sent; a value left empty is not sent. ``collect()`` is the one door out:
it returns the arguments only when nothing is wrong.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static, TextArea

from console.tui.widgets.schema_field import Problem, SchemaField
from console.tui.widgets.schema_object import ObjectField
from console.tui.widgets.schema_rules import MISSING, root_spec, schema_problems


class SchemaForm(Vertical):
    DEFAULT_CSS = """
    SchemaForm { height: 1fr; }
    SchemaForm #fields { height: 1fr; padding: 0 1 0 0; }
    SchemaForm #raw { height: 1fr; display: none; border: none; background: $boost; }
    SchemaForm.-raw #raw { display: block; }
    SchemaForm.-raw #fields { display: none; }
    SchemaForm #form-problem { color: $error; height: auto; display: none; }
    SchemaForm #form-problem.shown { display: block; }
    """

    def __init__(self, schema: dict[str, Any] | None, value: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schema = schema or {"type": "object"}
        self.root = ObjectField(root_spec(self.schema), "", value=value if value is not None else MISSING, flat=True)
        self.raw_editor = TextArea("", id="raw", soft_wrap=True, tab_behavior="indent", show_line_numbers=True)
        self.problems: list[Problem] = []
        """What the last ``collect()`` found."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="fields"):
            yield self.root
        yield self.raw_editor
        yield Static("", id="form-problem")

    # -- reading ---------------------------------------------------------------------------

    @property
    def raw(self) -> bool:
        return self.has_class("-raw")

    def field(self, path: str) -> SchemaField | None:
        """The field at a dotted path: ``timezone``, ``edits.0.oldText``."""
        return self.root.find(path)

    def value(self) -> dict[str, Any]:
        """The arguments as they stand, without judging (empty and broken fields left out)."""
        if self.raw:
            try:
                parsed = json.loads(self.raw_editor.text or "{}")
            except ValueError:
                return {}
            return parsed if isinstance(parsed, dict) else {}
        got = self.root.get()
        return got if isinstance(got, dict) else {}

    def collect(self) -> dict[str, Any] | None:
        """The arguments if nothing is wrong; otherwise None, with every problem shown."""
        self.problems = self._raw_problems() if self.raw else self._form_problems()
        if self.problems:
            first = self.problems[0]
            where = f"{first[0]}: " if first[0] else ""
            more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            self._show_form_problem(f"✗ not sent: {where}{first[1]}{more}" if not self.raw else
                                   "\n".join(f"✗ {p}: {m}" if p else f"✗ {m}" for p, m in self.problems[:8]))
            if not self.raw:
                self._reveal(first[0])
            return None
        self._show_form_problem(None)
        return self.value()

    def _form_problems(self) -> list[Problem]:
        found = self.root.check(strict=True)
        if found:
            return found
        for path, message in schema_problems(self.schema, self.value()):
            target = self.field(path) if path else None
            if target is not None and not target.problem_text:
                target.show_problem(message)
            found.append((path, message))
        return found

    def _raw_problems(self) -> list[Problem]:
        try:
            parsed = json.loads(self.raw_editor.text or "{}")
        except ValueError as exc:
            return [("", f"not valid JSON: {exc}")]
        if not isinstance(parsed, dict):
            return [("", "the arguments must be a JSON object: {...}")]
        return schema_problems(self.schema, parsed)

    def _show_form_problem(self, text: str | None) -> None:
        problem = self.query_one("#form-problem", Static)
        problem.update(Text(text or ""))
        problem.set_class(bool(text), "shown")

    def _reveal(self, path: str) -> None:
        target = self.field(path)
        if target is not None:
            self.query_one("#fields", VerticalScroll).scroll_to_widget(target, animate=False)

    # -- writing ---------------------------------------------------------------------------

    def load(self, value: dict[str, Any]) -> None:
        """Fill the form (and the raw editor) from arguments."""
        self.root.put(value)
        self.raw_editor.text = json.dumps(value, indent=2, ensure_ascii=False)

    def toggle_raw(self) -> bool:
        """Switch between the form and raw JSON, carrying the arguments across. Going back
        to the form needs valid JSON; keys the form has no field for are dropped."""
        if not self.raw:
            self.raw_editor.text = json.dumps(self.value(), indent=2, ensure_ascii=False)
            self.add_class("-raw")
            self._show_form_problem(None)
            self.raw_editor.focus()
            return True
        problems = self._raw_problems()
        if problems and problems[0][0] == "" and problems[0][1].startswith(("not valid JSON", "the arguments")):
            self._show_form_problem(f"✗ {problems[0][1]}")
            return True
        parsed = json.loads(self.raw_editor.text or "{}")
        known = {member.spec.name for member in self.root.members}
        dropped = sorted(set(parsed) - known)
        self.root.put(parsed)
        self.remove_class("-raw")
        self._show_form_problem(f"kept only in raw JSON, not in the form: {', '.join(dropped)}" if dropped else None)
        return False
