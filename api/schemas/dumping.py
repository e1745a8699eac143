"""A marshmallow schema's `dump`, planned once: the same output for less work per object.

`Schema.dump` asks every field, per object, how to read its value (an accessor, dotted paths,
defaults) and builds nested schemas' answers through their own `dump`. For a response a hot path
answers many times a second (a flash sale's order), `planned_dump(schema)` decides that once per
schema: each field's key, where its value comes from, and its own `_serialize` (so every field type
formats exactly as marshmallow does); nested schemas are planned the same way. A schema with dump
hooks (`pre_dump`, `post_dump`), a dotted `attribute` or a field whose value is not read from the
object, a field that reads or serializes its own way, a schema with its own `dump`, or a schema nested
in itself is dumped by marshmallow itself at that level. tests/unit/test_dumping.py holds the two equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields, missing
from marshmallow.decorators import POST_DUMP, PRE_DUMP

Dump = Callable[[Any], Any]


def planned_dump(schema: Schema) -> Dump:
    """`schema.dump` for one object (not `many`), planned once."""
    return _plan(schema, frozenset())


def _plan(schema: Schema, planning: frozenset[type]) -> Dump:
    """`planning`: the schema classes whose plan is being made above this one; a schema nested in
    itself (directly or not) is dumped by marshmallow from there down."""
    if schema.many or schema._hooks[PRE_DUMP] or schema._hooks[POST_DUMP] or _overrides(schema, Schema, "dump"):
        return schema.dump
    planning = planning | {type(schema)}
    plan: list[tuple[str, str, str, fields.Field, Callable[[Any, str, Any], Any] | None]] = []
    for name, field in schema.dump_fields.items():
        key = field.data_key if field.data_key is not None else name
        attribute = name if field.attribute is None else field.attribute
        own_reading = _overrides(field, fields.Field, "serialize") or _overrides(field, fields.Field, "get_value")
        if "." in attribute or not field._CHECK_ATTRIBUTE or own_reading:
            plan.append((key, name, attribute, field, None))  # marshmallow's own serialize
        else:
            plan.append((key, name, attribute, field, _formatter(field, planning)))
    dict_class = schema.dict_class
    get_attribute = schema.get_attribute
    custom_accessor = _overrides(schema, Schema, "get_attribute")

    def dump(obj: Any) -> Any:
        result = dict_class()
        plain = not custom_accessor and not hasattr(obj, "__getitem__")
        for key, name, attribute, field, formatter in plan:
            if formatter is None:
                value = field.serialize(name, obj, accessor=get_attribute)
                if value is not missing:
                    result[key] = value
                continue
            value = getattr(obj, attribute, missing) if plain else get_attribute(obj, attribute, missing)
            if value is missing:
                default = field.dump_default
                value = default() if callable(default) else default
                if value is missing:
                    continue
            result[key] = formatter(value, name, obj)
        return result

    return dump


def _formatter(field: fields.Field, planning: frozenset[type]) -> Callable[[Any, str, Any], Any]:
    """How `field` formats a value it read: its own `_serialize`, or for a nested schema (alone or
    in a list) that schema's planned dump."""
    if isinstance(field, fields.Nested) and _plannable(field, planning):
        nested = _plan(field.schema, planning)
        return lambda value, name, obj: None if value is None else nested(value)
    if (
        isinstance(field, fields.List)
        and type(field)._serialize is fields.List._serialize
        and isinstance(field.inner, fields.Nested)
        and not _overrides(field.inner, fields.Field, "serialize")
        and _plannable(field.inner, planning)
    ):
        item = _plan(field.inner.schema, planning)
        return lambda value, name, obj: None if value is None else [item(each) for each in value]
    return field._serialize


def _plannable(field: fields.Nested, planning: frozenset[type]) -> bool:
    """A Nested field whose `_serialize` is marshmallow's, dumping one object at a time, of a schema
    not already being planned above it."""
    return (
        type(field)._serialize is fields.Nested._serialize
        and not field.many
        and not field.schema.many
        and type(field.schema) not in planning
    )


def _overrides(obj: object, base: type, method: str) -> bool:
    """Whether `obj`'s class defines its own `method` rather than `base`'s."""
    return getattr(type(obj), method) is not getattr(base, method)
