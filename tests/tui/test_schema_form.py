"""The form generated from a tool's input schema, on the schemas real servers publish."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Checkbox, Input, Select

from console.tui.widgets.schema_form import SchemaForm
from console.tui.widgets.schema_rules import MISSING, FieldSpec, root_spec, spec_for

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real_tools"


def real(server: str, tool: str | None = None) -> Any:
    tools = json.loads((REAL / f"{server}.json").read_text())["tools"]
    if tool is None:
        return tools
    return next(t for t in tools if t["name"] == tool)["inputSchema"]


def every_real_tool() -> list[tuple[str, dict]]:
    return [(f"{path.stem}/{t['name']}", t["inputSchema"]) for path in sorted(REAL.glob("*.json"))
            for t in real(path.stem)]


class FormApp(App[None]):
    def __init__(self, schema: dict, value: dict | None = None) -> None:
        super().__init__()
        self.schema, self.value = schema, value

    def compose(self) -> ComposeResult:
        yield SchemaForm(self.schema, self.value)

    @property
    def form(self) -> SchemaForm:
        return self.query_one(SchemaForm)


def control(form: SchemaForm, path: str) -> Any:
    field = form.field(path)
    assert field is not None, path
    return field.control  # type: ignore[attr-defined]


async def type_into(pilot: Any, form: SchemaForm, path: str, text: str) -> None:
    widget = control(form, path)
    assert isinstance(widget, Input)
    widget.value = text
    await pilot.pause()


# -- the schema, reduced ------------------------------------------------------------------


def test_real_schemas_reduce_to_fields() -> None:
    fetch = {s.name: s for s in root_spec(real("fetch", "fetch")).properties}
    assert [s.name for s in root_spec(real("fetch", "fetch")).properties][0] == "url"  # required first
    assert (fetch["url"].kind, fetch["url"].required, fetch["url"].schema["format"]) == ("string", True, "uri")
    assert (fetch["max_length"].kind, fetch["max_length"].default) == ("integer", 5000)
    assert (fetch["raw"].kind, fetch["raw"].default) == ("boolean", False)

    git_log = {s.name: s for s in root_spec(real("git", "git_log")).properties}
    start = git_log["start_timestamp"]  # anyOf [string, null], default null
    assert (start.kind, start.nullable, start.default, start.required) == ("string", True, MISSING, False)

    thinking = {s.name: s for s in root_spec(real("sequential-thinking", "sequentialthinking")).properties}
    assert thinking["nextThoughtNeeded"].kind == "boolean"  # type: ["boolean", "string"]
    assert thinking["branchFromThought"].kind == "integer"

    edits = {s.name: s for s in root_spec(real("filesystem", "edit_file")).properties}["edits"]
    assert edits.kind == "array" and edits.items is not None and edits.items.kind == "object"
    assert [(p.name, p.required) for p in edits.items.properties] == [("newText", True), ("oldText", True)]

    message = {s.name: s for s in root_spec(real("everything", "get-annotated-message")).properties}
    assert message["messageType"].options == ["error", "success", "debug"]

    review = {s.name: s for s in root_spec(real("github", "create_pull_request_review")).properties}
    assert review["comments"].items is not None and review["comments"].items.kind == "json"  # anyOf of objects


def test_refs_into_defs_are_followed() -> None:
    schema = {"$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
              "type": "object", "properties": {"at": {"$ref": "#/$defs/Point", "description": "where"}}}
    [at] = root_spec(schema).properties
    assert at.kind == "object" and at.description == "where" and at.properties[0].required


# -- the form ---------------------------------------------------------------------------------


async def test_required_fields_are_marked_and_checked_inline() -> None:
    app = FormApp(real("time", "convert_time"))
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.form
        assert form.collect() is None
        await pilot.pause()
        assert {path for path, _ in form.problems} == {"source_timezone", "time", "target_timezone"}
        assert form.field("time").problem_text == "required"  # type: ignore[union-attr]
        await type_into(pilot, form, "source_timezone", "Europe/Paris")
        await type_into(pilot, form, "target_timezone", "Asia/Tokyo")
        await type_into(pilot, form, "time", "14:30")
        assert form.collect() == {"source_timezone": "Europe/Paris", "target_timezone": "Asia/Tokyo", "time": "14:30"}
        assert form.field("time").problem_text == ""  # type: ignore[union-attr]


async def test_defaults_are_prefilled_and_numbers_typed_and_bounded() -> None:
    app = FormApp(real("fetch", "fetch"))
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.form
        assert control(form, "max_length").value == "5000"
        assert form.value() == {"max_length": 5000, "raw": False, "start_index": 0}
        await type_into(pilot, form, "url", "not a url")
        assert form.field("url").problem_text.startswith("not a URI")  # type: ignore[union-attr]
        await type_into(pilot, form, "max_length", "0")
        assert form.field("max_length").problem_text == "must be at least 1"  # type: ignore[union-attr]
        await type_into(pilot, form, "max_length", "1000000")
        assert form.field("max_length").problem_text == "must be at most 999999"  # type: ignore[union-attr]
        assert form.collect() is None
        await type_into(pilot, form, "url", "https://example.org/page")
        await type_into(pilot, form, "max_length", "2048")
        assert form.collect() == {"url": "https://example.org/page", "max_length": 2048, "raw": False,
                                  "start_index": 0}


async def test_integers_refuse_fractions() -> None:
    app = FormApp(real("sequential-thinking", "sequentialthinking"))
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.form
        await type_into(pilot, form, "thoughtNumber", "0")
        assert form.field("thoughtNumber").problem_text == "must be at least 1"  # type: ignore[union-attr]
        await type_into(pilot, form, "thoughtNumber", "1.5")
        assert form.field("thoughtNumber").problem_text == "not a whole number"  # type: ignore[union-attr]


async def test_enums_and_booleans() -> None:
    app = FormApp(real("everything", "get-annotated-message"))
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.form
        select = control(form, "messageType")
        assert isinstance(select, Select) and select.value == Select.NULL
        assert form.collect() is None and form.problems == [("messageType", "required")]
        select.value = 1
        checkbox = control(form, "includeImage")
        assert isinstance(checkbox, Checkbox) and checkbox.value is False
        checkbox.value = True
        await pilot.pause()
        assert form.collect() == {"messageType": "success", "includeImage": True}


async def test_an_optional_boolean_without_default_is_sent_only_once_set() -> None:
    app = FormApp(real("github", "create_repository"))
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.form
        await type_into(pilot, form, "name", "demo")
        assert form.collect() == {"name": "demo"}
        control(form, "private").value = False  # unchanged value: still not touched
        control(form, "private").toggle()
        await pilot.pause()
        assert form.collect() == {"name": "demo", "private": True}


async def test_arrays_of_objects_add_remove_and_check_each_item() -> None:
    app = FormApp(real("filesystem", "edit_file"))
    async with app.run_test(size=(100, 50)) as pilot:
        form = app.form
        assert form.value() == {"edits": [{}], "dryRun": False}  # required array: one item to fill
        await type_into(pilot, form, "path", "/data/notes.md")
        await type_into(pilot, form, "edits.0.oldText", "first")
        await type_into(pilot, form, "edits.0.newText", "1st")
        edits = form.field("edits")
        edits.add_item()  # type: ignore[union-attr]
        await pilot.pause()
        assert form.collect() is None
        assert {p for p, _ in form.problems} == {"edits.1.newText", "edits.1.oldText"}
        assert form.field("edits.1.oldText").problem_text == "required"  # type: ignore[union-attr]
        await type_into(pilot, form, "edits.1.oldText", "second")
        await type_into(pilot, form, "edits.1.newText", "2nd")
        edits.remove_item(0)  # type: ignore[union-attr]
        await pilot.pause()
        assert form.collect() == {"path": "/data/notes.md", "edits": [{"oldText": "second", "newText": "2nd"}],
                                  "dryRun": False}
        assert form.field("edits.0.oldText") is not None and form.field("edits.1") is None


async def test_min_items_is_checked() -> None:
    app = FormApp(real("filesystem", "read_multiple_files"))
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.form
        await type_into(pilot, form, "paths.0", "/data/a.txt")
        assert form.collect() == {"paths": ["/data/a.txt"]}
        form.field("paths").remove_item(0)  # type: ignore[union-attr]
        await pilot.pause()
        assert form.collect() is None and form.problems == [("paths", "at least 1 item(s)")]
        assert form.field("paths").problem_text == "at least 1 item(s)"  # type: ignore[union-attr]


async def test_nullable_values_left_empty_are_not_sent() -> None:
    app = FormApp(real("git", "git_log"))
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.form
        await type_into(pilot, form, "repo_path", "/repo")
        assert form.collect() == {"repo_path": "/repo", "max_count": 10}
        await type_into(pilot, form, "start_timestamp", "yesterday")
        assert form.collect() == {"repo_path": "/repo", "max_count": 10, "start_timestamp": "yesterday"}


async def test_secret_looking_arguments_are_typed_masked() -> None:
    schema = {"type": "object", "properties": {"api_key": {"type": "string"}, "query": {"type": "string"}}}
    app = FormApp(schema)
    async with app.run_test(size=(100, 40)):
        assert control(app.form, "api_key").password and not control(app.form, "query").password


async def test_raw_json_mode_carries_values_both_ways_and_is_checked() -> None:
    app = FormApp(real("time", "get_current_time"))
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.form
        await type_into(pilot, form, "timezone", "Asia/Tokyo")
        assert form.toggle_raw() is True
        assert json.loads(form.raw_editor.text) == {"timezone": "Asia/Tokyo"}
        form.raw_editor.text = '{"timezone": 5}'
        assert form.collect() is None
        assert form.problems == [("timezone", "5 is not of type 'string'")]
        form.raw_editor.text = '{"timezone": '
        assert form.toggle_raw() is True and form.raw  # broken JSON: stays in raw mode
        form.raw_editor.text = '{"timezone": "UTC", "extra": 1}'
        assert form.toggle_raw() is False
        await pilot.pause()
        assert control(form, "timezone").value == "UTC"
        assert "extra" in str(form.query_one("#form-problem").render())
        assert form.collect() == {"timezone": "UTC"}


async def test_schema_checks_the_form_cannot_express_are_still_made() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
              "anyOf": [{"required": ["a"]}, {"required": ["b"]}]}
    app = FormApp(schema)
    async with app.run_test(size=(100, 40)) as pilot:
        form = app.form
        assert form.collect() is None and form.problems and form.problems[0][0] == ""
        await type_into(pilot, form, "b", "x")
        assert form.collect() == {"b": "x"}


def sample(spec: FieldSpec) -> Any:
    """A valid value for every kind of field the form can show."""
    s = spec.schema
    if spec.kind == "enum":
        return spec.options[-1]
    if spec.kind == "string":
        return {"uri": "https://example.org/x"}.get(str(s.get("format")), "text-" + spec.name)
    if spec.kind in ("number", "integer"):
        return int(s.get("minimum", 0)) + 1 if int(s.get("maximum", 10**6)) > int(s.get("minimum", 0)) + 1 else 1
    if spec.kind == "boolean":
        return True
    if spec.kind == "array":
        assert spec.items is not None
        return [sample(spec.items) for _ in range(max(2, int(s.get("minItems", 0))))]
    if spec.kind == "object":
        return {p.name: sample(p) for p in spec.properties}
    return {"any": ["json", 1]}


@pytest.mark.parametrize("name,schema", every_real_tool(), ids=[name for name, _ in every_real_tool()])
async def test_every_real_schema_round_trips(name: str, schema: dict) -> None:
    value = sample(root_spec(schema))
    app = FormApp(schema, value)
    async with app.run_test(size=(100, 60)) as pilot:
        await pilot.pause()
        form = app.form
        assert form.value() == value
        form.load({})
        await pilot.pause()
        # Emptied: only what a required field cannot leave out stays (a false switch, an empty list).
        assert all(v in (False, []) for v in form.value().values()), form.value()
        form.load(value)
        await pilot.pause()
        assert form.value() == value


def test_spec_for_unknown_shapes_falls_back_to_json() -> None:
    assert spec_for("x", {}, {}).kind == "json"
    assert spec_for("x", {"anyOf": [{"type": "object"}, {"type": "array"}]}, {}).kind == "json"
