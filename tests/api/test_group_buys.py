"""Group buys (拼团) over HTTP: staff make one; a member opens a group with their order and shares
it; others join by placing an order for it and paying; a seat counts once paid. A full group
succeeds and its orders go to fulfilment (held until then); at its time a short group is
refunded through the provider, or completed anyway (模拟成团), which members see before joining
and on the group afterwards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from api.worker import run_burst
from shop.catalog.models import Sku
from shop.core.db import db, utcnow
from shop.core.events import GroupFailed, GroupJoined, GroupSucceeded, OrderRefunded
from shop.offers.jobs import close_group, sweep_groups
from shop.offers.models import Group, OfferUnit
from shop.orders.models import Order, Refund
from tests.factories import ADDRESS, PARCEL, fake_pay, make_store, member_headers, reload

M = "/api/v1/merchant"


def offer_body(sku_id: int, **extra: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "sku_id": sku_id,
        "price": 1500,
        "group_size": 3,
        "time_limit_hours": 24,
        "quota": 10,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(days=3)).isoformat(),
        **extra,
    }


def make_offer(client, store: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = client.post(f"{M}/group-buys", json=offer_body(store["apple"], **extra), headers=store["staff"])
    assert response.status_code == 201, response.json
    return response.json


def order_fields(key: str, **extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    return {"fulfilment": "delivery", "address": dict(ADDRESS), **extra}, {"Idempotency-Key": key}


def open_group(client, headers: dict[str, str], offer_id: int, key: str, **extra: Any):
    body, key_header = order_fields(key, **extra)
    return client.post(f"/api/v1/group-buys/{offer_id}/groups", json=body, headers={**headers, **key_header})


def join(client, headers: dict[str, str], group_id: int, key: str, **extra: Any):
    body, key_header = order_fields(key, **extra)
    return client.post(f"/api/v1/groups/{group_id}/orders", json=body, headers={**headers, **key_header})


def paid(client, response) -> dict[str, Any]:
    assert response.status_code == 201, response.json
    answer = fake_pay(client, response.json["order"]["order_no"])
    assert answer.status_code == 200, answer.json
    return response.json


def store_with_apple(client) -> dict[str, Any]:
    return make_store(client, member="leader", apple={"price": 2990, "stock": 30})


def members(client, store, *names: str) -> list[dict[str, str]]:
    return [member_headers(client, store["merchant"].code, name) for name in names]


def test_a_group_opens_once_its_initiator_pays_fills_as_members_pay_and_then_ships(client, ctx, events):
    store = store_with_apple(client)
    offer = make_offer(client, store, leader_price=990)
    assert (offer["left"], offer["completes_when_short"], offer["groups"]) == (10, False, {})
    assert reload(Sku, store["apple"]).stock == 20

    opened = open_group(client, store["member"], offer["id"], "group-open-0001")
    assert opened.status_code == 201, opened.json
    group, order = opened.json["group"], opened.json["order"]
    assert (group["status"], group["joined"], group["expires_at"], order["lines"][0]["unit_price"]) == (
        "opening",
        0,
        None,
        990,
    )
    assert group["share"]["path"].endswith(f"group_id={group['id']}")
    bob, carol, dave = members(client, store, "bob", "carol", "dave")
    not_yet = join(client, bob, group["id"], "group-join-early")
    assert (not_yet.status_code, not_yet.json["error"]["code"]) == (409, "group_closed")

    assert fake_pay(client, order["order_no"]).status_code == 200
    seen = client.get(f"/api/v1/groups/{group['id']}", headers=bob).json
    assert (seen["status"], seen["joined"], seen["seats_left"]) == ("forming", 1, 2)
    assert 24 * 3600 - 60 < seen["seconds_left"] <= 24 * 3600
    assert seen["members"][0]["leader"] and set(seen["members"][0]) == {
        "seat",
        "leader",
        "nickname",
        "avatar_url",
        "joined_at",
    }  # masked names, no ids

    bobs = paid(client, join(client, bob, group["id"], "group-join-bob1"))
    assert bobs["order"]["lines"][0]["unit_price"] == 1500
    again = join(client, bob, group["id"], "group-join-bob2")
    assert (again.status_code, again.json["error"]["code"]) == (409, "already_in_group")
    # Paid but not full: held back from fulfilment.
    held = client.post(f"{M}/orders/{bobs['order']['id']}/ship", json=PARCEL, headers=store["staff"])
    assert (held.status_code, held.json["error"]["code"]) == (409, "group_forming")

    carols = paid(client, join(client, carol, group["id"], "group-join-carol"))
    full = client.get(f"/api/v1/groups/{group['id']}", headers=dave).json
    assert (full["status"], full["joined"], full["simulated"]) == ("succeeded", 3, False)
    late = join(client, dave, group["id"], "group-join-dave")
    assert (late.status_code, late.json["error"]["code"]) == (409, "group_closed")
    shipped = client.post(f"{M}/orders/{carols['order']['id']}/ship", json=PARCEL, headers=store["staff"])
    assert shipped.status_code == 200, shipped.json

    joined = events.of(GroupJoined)
    assert [(e.leader, e.members, e.size) for e in joined] == [(True, 1, 3), (False, 2, 3), (False, 3, 3)]
    (succeeded,) = events.of(GroupSucceeded)
    assert succeeded.order_ids == (order["id"], bobs["order"]["id"], carols["order"]["id"])
    assert (succeeded.leader_id, succeeded.simulated) == (joined[0].member_id, False)


def _expire(group_id: int) -> None:
    db.session.execute(update(Group).where(Group.id == group_id).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def test_a_group_short_at_its_time_is_refunded_through_the_provider_and_units_go_back(app, client, ctx, events):
    store = store_with_apple(client)
    offer = make_offer(client, store)
    opened = paid(client, open_group(client, store["member"], offer["id"], "group-fail-open"))
    group = opened["group"]
    (bob, carol) = members(client, store, "bob", "carol")
    bobs = paid(client, join(client, bob, group["id"], "group-fail-bob"))
    unpaid = join(client, carol, group["id"], "group-fail-carol").json
    _expire(group["id"])

    assert close_group(group["id"]) == "failed"
    assert close_group(group["id"]) is None  # the sweep or a second job: once
    (failed,) = events.of(GroupFailed)
    assert failed.order_ids == (opened["order"]["id"], bobs["order"]["id"])
    run_burst(app)  # each order's settle job; the refunds' submissions to the fake provider
    run_burst(app)
    assert sweep_groups() == 0  # nothing left to do
    db.session.expire_all()
    assert db.session.get(Order, unpaid["order"]["id"]).status == "cancelled"
    for order_id in failed.order_ids:
        order = db.session.get(Order, order_id)
        assert order.status == "refunded", order.status
        (refund,) = db.session.execute(select(Refund).where(Refund.order_id == order.id)).scalars()
        assert (refund.kind, refund.status, refund.amount) == ("group_failed", "succeeded", order.paid_total)
    assert [e.order_id for e in events.of(OrderRefunded)] == list(failed.order_ids)
    view = client.get(f"{M}/group-buys/{offer['id']}", headers=store["staff"]).json
    assert (view["left"], view["sold"], view["groups"]) == (10, 0, {"failed": 1})
    seen = client.get(f"/api/v1/groups/{group['id']}", headers=bob).json
    assert (seen["status"], seen["simulated"]) == ("failed", False)


def test_a_short_group_completes_anyway_when_the_offer_says_so_and_members_are_told(client, ctx, events):
    store = store_with_apple(client)
    offer = make_offer(client, store, on_expiry="complete")
    listed = client.get("/api/v1/group-buys", headers=store["member"]).json["items"]
    assert listed[0]["completes_when_short"] is True
    group = paid(client, open_group(client, store["member"], offer["id"], "group-sim-open"))["group"]
    assert group["completes_when_short"] is True  # shown on the group before anyone joins
    (bob,) = members(client, store, "bob")
    paid(client, join(client, bob, group["id"], "group-sim-bob"))
    _expire(group["id"])
    assert sweep_groups() >= 1
    seen = client.get(f"/api/v1/groups/{group['id']}", headers=bob).json
    assert (seen["status"], seen["joined"], seen["simulated"]) == ("succeeded", 2, True)
    (succeeded,) = events.of(GroupSucceeded)
    assert succeeded.simulated is True


def test_two_payments_for_the_last_seat_one_gets_it_and_the_other_is_refunded(client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store, group_size=2)
    group = paid(client, open_group(client, store["member"], offer["id"], "group-last-open"))["group"]
    bob, carol = members(client, store, "bob", "carol")
    bobs = join(client, bob, group["id"], "group-last-bob").json
    carols = join(client, carol, group["id"], "group-last-carol").json
    assert fake_pay(client, bobs["order"]["order_no"]).status_code == 200
    # No payment starts for a seat that is gone ...
    refused = client.post(f"/api/v1/orders/{carols['order']['id']}/pay", headers=carol)
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "group_closed")
    assert refused.json["error"]["details"]["reason"] == "succeeded"
    # ... and one started before it went is sent back.
    late = fake_pay(client, carols["order"]["order_no"])
    assert late.status_code == 200
    db.session.expire_all()
    carol_order = db.session.get(Order, carols["order"]["id"])
    assert carol_order.status == "cancelled"
    (refund,) = db.session.execute(select(Refund).where(Refund.order_id == carol_order.id)).scalars()
    assert refund.kind == "late_payment"
    held = db.session.execute(select(OfferUnit).where(OfferUnit.order_id == carol_order.id)).scalars().all()
    assert held == []  # back to the offer
    # What carol reads: why, and her payment on its way back.
    seen = client.get(f"/api/v1/orders/{carol_order.id}", headers=carol).json
    listed = client.get(f"/api/v1/orders/{carol_order.id}/refunds", headers=carol).json["items"]
    assert (seen["status"], seen["cancel_reason"]) == ("cancelled", "group_closed")
    assert [(r["kind"], r["amount"]) for r in listed] == [("late_payment", carols["order"]["payable_total"])]


def test_an_initiator_order_left_unpaid_cancels_its_group(client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store)
    opened = open_group(client, store["member"], offer["id"], "group-unpaid-open").json
    cancelled = client.post(f"/api/v1/orders/{opened['order']['id']}/cancel", headers=store["member"])
    assert cancelled.status_code == 200
    seen = client.get(f"/api/v1/groups/{opened['group']['id']}", headers=store["member"]).json
    assert seen["status"] == "cancelled"


def test_group_buy_lines_are_sold_only_through_groups_and_bad_terms_are_422(client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store)
    body = {
        "items": [{"sku_id": store["apple"], "quantity": 1, "offer": {"kind": "group_buy", "id": offer["id"]}}],
        "fulfilment": "delivery",
        "address": dict(ADDRESS),
    }
    refused = client.post("/api/v1/orders", json=body, headers={**store["member"], "Idempotency-Key": "group-direct-1"})
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "offer_unavailable")
    for extra, field in [
        ({"group_size": 1}, "group_size"),
        ({"group_size": 51}, "group_size"),
        ({"price": 0}, "price"),
        ({"leader_price": 0}, "leader_price"),
        ({"leader_price": 900, "leader_commission_bp": 500}, "leader_commission_bp"),
        ({"per_member_limit": 0}, "per_member_limit"),
        ({"on_expiry": "maybe"}, "on_expiry"),
        ({"leader_price": 1500}, "leader_price"),  # not below the group price
        ({"quota": 2}, "quota"),  # fewer units than a group's seats
        ({"ends_at": (utcnow() + timedelta(seconds=20)).isoformat(), "starts_at": utcnow().isoformat()}, "ends_at"),
    ]:
        response = client.post(f"{M}/group-buys", json=offer_body(store["apple"], **extra), headers=store["staff"])
        assert response.status_code == 422, (extra, response.json)
        assert field in response.json["error"]["details"]["fields"], (extra, response.json)
    too_much = client.post(f"{M}/group-buys", json=offer_body(store["apple"], quota=21), headers=store["staff"])
    assert (too_much.status_code, too_much.json["error"]["code"]) == (409, "insufficient_stock")


def test_a_per_group_campaign_gives_each_paid_member_an_entry_and_a_failed_group_takes_it_back(client, ctx):
    from tests.api.test_campaigns import create_campaign

    store = store_with_apple(client)
    campaign = create_campaign(client, store, entry_rule="per_group", max_entries=3)
    offer = make_offer(client, store)
    group = paid(client, open_group(client, store["member"], offer["id"], "group-camp-open"))["group"]
    (bob,) = members(client, store, "bob")
    paid(client, join(client, bob, group["id"], "group-camp-bob"))

    def entries(headers: dict[str, str]) -> int:
        items = client.get("/api/v1/campaigns", headers=headers).json["items"]
        return next(item for item in items if item["id"] == campaign["id"])["chances"]

    assert (entries(store["member"]), entries(bob)) == (1, 1)
    _expire(group["id"])
    assert close_group(group["id"]) == "failed"
    assert (entries(store["member"]), entries(bob)) == (0, 0)


def test_the_demo_shop_runs_a_flash_sale_and_a_group_buy(app, client, ctx):
    from shop.demo import DEMO_MERCHANT

    runner = app.test_cli_runner()
    for _ in range(2):
        assert runner.invoke(args=["groupshop", "seed-demo"]).exit_code == 0
    member = member_headers(client, DEMO_MERCHANT, "demo-visitor")
    flash = client.get("/api/v1/flash-sales", headers=member).json["items"]
    groups = client.get("/api/v1/group-buys", headers=member).json["items"]
    assert [(f["title"], f["state"], f["left"]) for f in flash] == [("秒杀 厨房湿巾", "running", 50)]
    assert [(g["title"], g["group_size"], g["leader_price"]) for g in groups] == [("3人团 土鸡蛋", 3, 2480)]


def test_ending_the_offer_ends_its_forming_groups_time_and_the_sweep_closes_them(app, client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store)
    group = paid(client, open_group(client, store["member"], offer["id"], "group-end-open"))["group"]
    ended = client.post(f"{M}/group-buys/{offer['id']}/end", headers=store["staff"])
    assert ended.status_code == 200, ended.json
    db.session.expire_all()
    assert db.session.get(Group, group["id"]).expires_at <= utcnow()
    assert sweep_groups() >= 1
    run_burst(app)
    run_burst(app)
    seen = client.get(f"/api/v1/groups/{group['id']}", headers=store["member"]).json
    assert seen["status"] == "failed"
    db.session.expire_all()
    assert reload(Sku, store["apple"]).stock == 30  # the refunded unit went straight back to the SKU


def test_a_patch_cannot_leave_both_leader_terms(client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store, leader_price=790)
    both = client.patch(f"{M}/group-buys/{offer['id']}", json={"leader_commission_bp": 500}, headers=store["staff"])
    assert both.status_code == 422 and list(both.json["error"]["details"]["fields"]) == ["leader_commission_bp"]
    switched = client.patch(
        f"{M}/group-buys/{offer['id']}",
        json={"leader_price": None, "leader_commission_bp": 500},
        headers=store["staff"],
    )
    assert (switched.status_code, switched.json["leader_price"], switched.json["leader_commission_bp"]) == (
        200,
        None,
        500,
    )


def test_members_find_the_groups_they_opened_or_joined_and_nobody_elses(client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store)
    mine = open_group(client, store["member"], offer["id"], "group-mine-open").json["group"]
    bob, carol = members(client, store, "bob", "carol")
    theirs = paid(client, open_group(client, bob, offer["id"], "group-bob-open"))["group"]
    listed = client.get("/api/v1/groups", headers=store["member"]).json["items"]
    assert [(g["id"], g["status"]) for g in listed] == [(mine["id"], "opening")]
    assert client.get("/api/v1/groups", headers=carol).json["items"] == []
    paid(client, join(client, carol, theirs["id"], "group-carol-join"))
    assert [g["id"] for g in client.get("/api/v1/groups", headers=carol).json["items"]] == [theirs["id"]]
    other = make_store(client, member="outsider", pear={"price": 100, "stock": 5})
    assert client.get("/api/v1/groups", headers=other["member"]).json["items"] == []


def test_a_refund_of_a_forming_groups_order_waits_for_the_group(client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store)
    opened = paid(client, open_group(client, store["member"], offer["id"], "group-hold-open"))
    asked = client.post(
        f"/api/v1/orders/{opened['order']['id']}/refunds", json={"reason": "changed my mind"}, headers=store["member"]
    )
    assert (asked.status_code, asked.json["error"]["code"]) == (409, "group_forming")


def test_an_initiator_paying_after_staff_ended_the_offer_is_refunded_and_the_group_never_opens(client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store)
    opened = open_group(client, store["member"], offer["id"], "group-late-open").json
    assert client.post(f"{M}/group-buys/{offer['id']}/end", headers=store["staff"]).status_code == 200
    assert fake_pay(client, opened["order"]["order_no"]).status_code == 200
    db.session.expire_all()
    order = db.session.get(Order, opened["order"]["id"])
    assert order.status == "cancelled"
    (refund,) = db.session.execute(select(Refund).where(Refund.order_id == order.id)).scalars()
    assert refund.kind == "late_payment"
    seen = client.get(f"/api/v1/groups/{opened['group']['id']}", headers=store["member"]).json
    assert seen["status"] == "cancelled"
    assert reload(Sku, store["apple"]).stock == 30  # the offer is closed: its unit went to the SKU


def test_no_payment_starts_for_a_group_that_cannot_open_and_the_sweep_cancels_it(app, client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store)
    opened = open_group(client, store["member"], offer["id"], "group-ended-open").json
    assert client.post(f"{M}/group-buys/{offer['id']}/end", headers=store["staff"]).status_code == 200

    refused = client.post(f"/api/v1/orders/{opened['order']['id']}/pay", headers=store["member"])

    assert (refused.status_code, refused.json["error"]["code"]) == (409, "offer_not_active")
    assert sweep_groups() >= 1
    run_burst(app)
    seen = client.get(f"/api/v1/groups/{opened['group']['id']}", headers=store["member"]).json
    order = client.get(f"/api/v1/orders/{opened['order']['id']}", headers=store["member"]).json
    assert (seen["status"], order["status"], order["cancel_reason"]) == ("cancelled", "cancelled", "group_closed")
    assert reload(Sku, store["apple"]).stock == 30
    assert sweep_groups() == 0  # once


def test_a_groups_terms_do_not_change_while_it_forms(client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store)
    path = f"{M}/group-buys/{offer['id']}"
    paid(client, open_group(client, store["member"], offer["id"], "group-terms-open"))

    for change in ({"price": 5000}, {"on_expiry": "complete"}, {"leader_price": 990}, {"time_limit_hours": 1}):
        refused = client.patch(path, json=change, headers=store["staff"])
        assert (refused.status_code, refused.json["error"]["code"]) == (409, "groups_forming"), change
        assert list(refused.json["error"]["details"]["fields"]) == list(change)
    assert client.patch(path, json={"price": 1500, "per_member_limit": 2}, headers=store["staff"]).status_code == 200
    seen = client.get(path, headers=store["staff"]).json
    assert (seen["price"], seen["on_expiry"], seen["per_member_limit"]) == (1500, "refund", 2)


def test_a_closed_group_shows_no_countdown_and_no_seat_and_each_sees_their_own_order(client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store, group_size=2)
    opened = paid(client, open_group(client, store["member"], offer["id"], "group-seen-open"))
    group = opened["group"]
    (bob,) = members(client, store, "bob")
    bobs = paid(client, join(client, bob, group["id"], "group-seen-bob"))

    mine = client.get(f"/api/v1/groups/{group['id']}", headers=bob).json
    theirs = client.get(f"/api/v1/groups/{group['id']}", headers=store["member"]).json
    (listed,) = client.get("/api/v1/groups", headers=bob).json["items"]

    assert (mine["status"], mine["seconds_left"], mine["seats_left"], mine["joined"]) == ("succeeded", None, 0, 2)
    assert mine["my_order"] == {"id": bobs["order"]["id"], "status": "paid"}
    assert theirs["my_order"] == {"id": opened["order"]["id"], "status": "paid"}
    assert listed["my_order"]["id"] == bobs["order"]["id"]
    assert "member_id" not in mine["members"][0]
    staff = client.get(f"{M}/group-buys/{offer['id']}/groups", headers=store["staff"]).json["items"][0]
    assert [(m["order_id"], m["leader"]) for m in staff["members"]] == [
        (opened["order"]["id"], True),
        (bobs["order"]["id"], False),
    ]
    assert "my_order" not in staff


def _free_making_coupon_and_point(client, store: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A coupon of the member's worth more than any group order (it applies to offer lines), and a
    pickup point (no shipping fee): an order with the coupon would be free."""
    template = client.post(
        f"{M}/coupon-templates",
        json={
            "name": "大额券",
            "kind": "amount_off",
            "amount": 100000,
            "valid_days": 3,
            "total_quantity": 5,
            "offer_lines": True,
            "channels": ["centre"],
        },
        headers=store["staff"],
    )
    assert template.status_code == 201, template.json
    claimed = client.post(f"/api/v1/coupon-centre/{template.json['id']}/claim", headers=store["member"])
    assert claimed.status_code == 201, claimed.json
    point = client.post(
        f"{M}/pickup-points",
        json={"name": "点", "address": "1 号", "contact_name": "李", "contact_phone": "13900000000"},
        headers=store["staff"],
    ).json
    return claimed.json["id"], point


def test_coupons_the_server_would_choose_that_make_a_group_order_free_are_left_out(client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store)
    coupon_id, point = _free_making_coupon_and_point(client, store)
    path = f"/api/v1/group-buys/{offer['id']}/groups"

    def open_for_pickup(key: str, **extra: Any):
        body = {"fulfilment": "pickup", "pickup_point_id": point["id"], **extra}
        return client.post(path, json=body, headers={**store["member"], "Idempotency-Key": key})

    opened = open_for_pickup("group-free-open")

    assert opened.status_code == 201, opened.json
    assert (opened.json["order"]["discount_total"], opened.json["order"]["payable_total"]) == (0, 1500)
    chosen = open_for_pickup("group-free-chosen", coupons=[coupon_id])
    assert (chosen.status_code, chosen.json["error"]["code"]) == (409, "group_order_free")


def test_a_group_order_that_coupons_would_make_free_is_refused(ctx):
    from types import SimpleNamespace

    import pytest

    from shop.core.errors import Conflict
    from shop.offers.group_buys import GroupKeeper

    with pytest.raises(Conflict) as refused:
        GroupKeeper("group_buy").take(SimpleNamespace(payable_total=0), [])
    assert refused.value.code == "group_order_free"


def _quote(client, headers: dict[str, str], path: str, **body: Any):
    return client.post(path, json={"fulfilment": "delivery", **body}, headers=headers)


def test_a_member_sees_what_opening_or_joining_costs_before_ordering(client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store, leader_price=990, per_member_limit=3)
    opening = _quote(client, store["member"], f"/api/v1/group-buys/{offer['id']}/quote", quantity=2)
    assert opening.status_code == 200, opening.json
    (line,) = opening.json["lines"]
    assert (line["unit_price"], line["sku_price"], line["quantity"]) == (990, 2990, 2)
    assert line["offer"]["kind"] == "group_buy"
    assert opening.json["goods_total"] == 1980
    assert opening.json["payable_total"] == opening.json["goods_total"] + opening.json["shipping_fee"]
    assert reload(Sku, store["apple"]).stock == 20  # nothing reserved: only the offer's set-aside moved
    units_free = db.session.execute(select(OfferUnit).where(OfferUnit.order_id.is_(None))).scalars().all()
    assert len(units_free) == 10

    group = paid(client, open_group(client, store["member"], offer["id"], "quote-open"))["group"]
    other, again = members(client, store, "other", "again")
    joining = _quote(client, other, f"/api/v1/groups/{group['id']}/quote")
    assert joining.status_code == 200, joining.json
    assert (joining.json["lines"][0]["unit_price"], joining.json["goods_total"]) == (1500, 1500)
    placed = join(client, other, group["id"], "quote-join")
    assert placed.status_code == 201, placed.json
    order = placed.json["order"]
    quoted = joining.json
    assert (order["goods_total"], order["payable_total"]) == (quoted["goods_total"], quoted["payable_total"])

    # the refusals joining would meet, before any order: the initiator is in it already, over the limit
    mine = _quote(client, store["member"], f"/api/v1/groups/{group['id']}/quote")
    assert (mine.status_code, mine.json["error"]["code"]) == (409, "already_in_group")
    over = _quote(client, again, f"/api/v1/groups/{group['id']}/quote", quantity=99)
    assert (over.status_code, over.json["error"]["code"]) == (409, "offer_limit_reached")
    missing = _quote(client, again, "/api/v1/groups/999999999/quote")
    assert missing.status_code == 404
    pickup = _quote(client, again, f"/api/v1/groups/{group['id']}/quote", fulfilment="pickup", pickup_point_id=999999)
    assert (pickup.status_code, pickup.json["error"]["code"]) == (422, "pickup_point_invalid")


def test_a_quote_leaves_out_coupons_that_would_make_a_group_order_free_as_the_order_does(client, ctx):
    store = store_with_apple(client)
    offer = make_offer(client, store)
    coupon_id, point = _free_making_coupon_and_point(client, store)
    path = f"/api/v1/group-buys/{offer['id']}/quote"
    body = {"fulfilment": "pickup", "pickup_point_id": point["id"]}
    quoted = client.post(path, json=body, headers=store["member"])
    assert quoted.status_code == 200, quoted.json
    assert (quoted.json["discount_total"], quoted.json["payable_total"]) == (0, 1500)
    chosen = client.post(path, json={**body, "coupons": [coupon_id]}, headers=store["member"])
    assert (chosen.status_code, chosen.json["error"]["code"]) == (409, "group_order_free")
