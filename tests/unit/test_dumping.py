"""planned_dump (api.schemas.dumping) answers what marshmallow's own dump answers."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from marshmallow import Schema, fields, post_dump

from api.schemas.dumping import planned_dump
from api.schemas.orders import OrderSchema


class Inner(Schema):
    name = fields.String()
    size = fields.Integer(dump_default=7)


class Outer(Schema):
    id = fields.Integer()
    label = fields.String(data_key="title")
    renamed = fields.Integer(attribute="other")
    deep = fields.String(attribute="inner.name")
    when = fields.DateTime()
    day = fields.Date(allow_none=True)
    price = fields.Decimal(as_string=True)
    specs = fields.Dict(keys=fields.String(), values=fields.String())
    inner = fields.Nested(Inner, allow_none=True)
    inners = fields.List(fields.Nested(Inner))
    tags = fields.List(fields.String())
    secret = fields.String(load_only=True)
    computed = fields.Method("_computed")
    absent = fields.String()
    only_name = fields.Nested(Inner, only=("name",))

    def _computed(self, obj):
        return f"#{obj.id}" if not isinstance(obj, dict) else f"#{obj['id']}"


class Hooked(Schema):
    id = fields.Integer()

    @post_dump
    def mark(self, data, **kwargs):
        return {**data, "hooked": True}


def _object(**changes):
    values = dict(
        id=3,
        label="一",
        other=5,
        inner=SimpleNamespace(name="in"),
        when=dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.UTC),
        day=None,
        price="12.50",
        specs={"款式": "1"},
        inners=[SimpleNamespace(name="a", size=1), {"name": "b"}],
        tags=["x", 2],
        secret="s",
        only_name=SimpleNamespace(name="n", size=9),
    )
    values.update(changes)
    return SimpleNamespace(**values)


def test_objects_dicts_nested_lists_defaults_and_renames_dump_the_same():
    from decimal import Decimal

    schema = Outer()
    dump = planned_dump(schema)
    for obj in (
        _object(price=Decimal("12.50")),
        _object(price=Decimal("1"), inner=None, inners=[], specs=None),
        {"id": 4, "label": "dict", "other": 1, "inner": {"name": "d"}, "inners": [], "price": Decimal("2.5")},
    ):
        assert dump(obj) == schema.dump(obj)


def test_a_schema_with_dump_hooks_is_dumped_by_marshmallow():
    schema = Hooked()
    assert planned_dump(schema)({"id": 1}) == {"id": 1, "hooked": True} == schema.dump({"id": 1})


def test_an_order_dumps_the_same():
    when = dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.UTC)
    line = SimpleNamespace(
        id=1, sku_id=2, product_id=3, title="苹果", specs={"款式": "1"}, image="", unit_price=990, quantity=2,
        goods_amount=1980, discount=0, paid_amount=1980, description="", refunded_quantity=0, refunded_amount=0,
        offer=None, offer_kind="flash_sale", offer_id=4,
    )  # fmt: skip
    order = SimpleNamespace(
        id=9, order_no="N1", kind="goods", status="paid", fulfilment="pickup", goods_total=1980, shipping_fee=0,
        discount_total=100, payable_total=1880, paid_total=1880, refunded_total=0, address=None, pickup_point_id=5,
        pickup_code="12345678", remark="", expires_at=when, paid_at=when, carrier=None, tracking_no=None,
        shipped_at=None, ready_at=None, received_at=None, after_sales_until=None, completed_at=None,
        cancelled_at=None, cancel_reason=None, created_at=when, lines=[line],
        adjustments=[SimpleNamespace(source="coupons", reference="7", description="满减", kind="goods", amount=100)],
    )  # fmt: skip
    schema = OrderSchema()
    assert planned_dump(schema)(order) == schema.dump(order)
    order.status = "pending_payment"
    assert planned_dump(schema)(order)["pickup_code"] is None == schema.dump(order)["pickup_code"]


class Node(Schema):
    name = fields.String()
    child = fields.Nested(lambda: Node(), allow_none=True)
    children = fields.List(fields.Nested(lambda: Node()))


def test_a_schema_nested_in_itself_is_planned_once_and_dumps_the_same():
    leaf = SimpleNamespace(name="leaf", child=None, children=[])
    tree = SimpleNamespace(name="root", child=SimpleNamespace(name="mid", child=leaf, children=[leaf]), children=[leaf])
    schema = Node()
    assert planned_dump(schema)(tree) == schema.dump(tree)


class Shouting(fields.String):
    """Reads and writes its own way: the plan must not step around it."""

    def get_value(self, obj, attr, accessor=None, default=None):
        return str(super().get_value(obj, attr, accessor=accessor)).upper()

    def serialize(self, attr, obj, accessor=None, **kwargs):
        return f"<{attr}>" + super().serialize(attr, obj, accessor=accessor, **kwargs)


class Echo(fields.Field):
    """Formats with the name it is given: the field's name, not its attribute."""

    def _serialize(self, value, attr, obj, **kwargs):
        return f"{attr}={value}"


class Dumping(Schema):
    id = fields.Integer()

    def dump(self, obj, *, many=None):
        return {"dumped": True, **super().dump(obj, many=many)}


class Odd(Schema):
    loud = Shouting()
    echo = Echo(attribute="other")
    empty = fields.String(attribute="")
    own = fields.Nested(Dumping)
    owns = fields.List(fields.Nested(Dumping))


def test_fields_and_schemas_with_their_own_ways_dump_the_same():
    obj = SimpleNamespace(loud="hey", other=1, own=SimpleNamespace(id=1), owns=[SimpleNamespace(id=2)])
    schema = Odd()
    dumped = planned_dump(schema)(obj)
    assert dumped == schema.dump(obj)
    assert dumped["loud"] == "<loud>HEY" and dumped["echo"] == "echo=1" and dumped["own"] == {"dumped": True, "id": 1}
