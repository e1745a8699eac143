"""Flash sales under real concurrency: every buyer runs the whole HTTP stack on its own pooled
connection and everything commits. The last unit goes exactly once, a member's limit holds
against their own parallel requests, and units that expire unpaid sell again at once."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from shop.catalog.models import Sku
from shop.core.db import db, utcnow
from shop.offers import flash_fast
from shop.offers.models import OfferBuyer, OfferUnit
from shop.orders.models import Order
from shop.payments.jobs import sweep_expired_orders
from tests.factories import ADDRESS, make_merchant, make_product, member_headers, race, staff_headers

pytestmark = pytest.mark.committing


def _phone(app, i: int):
    """Buyer i's own client, from its own address (wx-login is throttled per address)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.1.{i // 250}.{i % 250 + 1}"
    return client


def _sale(app, *, quota: int, buyers: int, limit: int = 1, stock: int = 1000) -> tuple[int, int, list[dict]]:
    with app.app_context():
        merchant = make_merchant()
        sku_id = make_product(merchant, skus=[{"specs": {}, "price": 1990, "stock": stock}]).skus[0].id
        now = utcnow()
        response = app.test_client().post(
            "/api/v1/merchant/flash-sales",
            json={
                "sku_id": sku_id,
                "price": 990,
                "quota": quota,
                "per_member_limit": limit,
                "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
            },
            headers=staff_headers(app.test_client(), merchant.code),
        )
        assert response.status_code == 201, response.json
        headers = [member_headers(_phone(app, i), merchant.code, f"buyer{i}") for i in range(buyers)]
        db.session.remove()
    return response.json["id"], sku_id, headers


def _buy(app, sale_id: int, headers: dict, key: str, quantity: int = 1):
    return app.test_client().post(
        f"/api/v1/flash-sales/{sale_id}/orders",
        json={"quantity": quantity, "fulfilment": "delivery", "address": dict(ADDRESS)},
        headers={**headers, "Idempotency-Key": key},
    )


def _held(app, sale_id: int) -> tuple[int, int]:
    """(units held by orders, free units) of the sale."""
    with app.app_context():
        held = db.session.execute(
            select(func.count()).where(OfferUnit.offer_id == sale_id, OfferUnit.order_id.is_not(None))
        ).scalar_one()
        free = db.session.execute(
            select(func.count()).where(OfferUnit.offer_id == sale_id, OfferUnit.order_id.is_(None))
        ).scalar_one()
        db.session.remove()
    return held, free


def test_two_hundred_buyers_racing_for_forty_units_make_exactly_forty_orders(app):
    sale_id, sku_id, headers = _sale(app, quota=40, buyers=200)

    def buy(i: int) -> str:
        response = _buy(app, sale_id, headers[i], f"flash-race-{i:06d}")
        assert response.status_code in (201, 409), response.json
        return "ok" if response.status_code == 201 else response.json["error"]["code"]

    outcomes = Counter(race(200, buy))

    assert outcomes == {"ok": 40, "sold_out": 160}
    assert _held(app, sale_id) == (40, 0)
    with app.app_context():
        assert db.session.get(Sku, sku_id).stock == 960  # set aside once; the orders took none of it
        assert db.session.execute(select(func.count()).select_from(Order)).scalar() == 40
        units = db.session.execute(
            select(OfferUnit.order_id, func.count()).where(OfferUnit.offer_id == sale_id).group_by(OfferUnit.order_id)
        ).all()
        assert all(count == 1 for _, count in units)  # no unit sold twice, no order holding two


def test_a_member_racing_their_own_requests_gets_no_more_than_the_limit(app):
    sale_id, _, headers = _sale(app, quota=100, buyers=1, limit=3)

    def buy(i: int) -> str:
        response = _buy(app, sale_id, headers[0], f"flash-self-{i:06d}")
        return "ok" if response.status_code == 201 else response.json["error"]["code"]

    outcomes = Counter(race(12, buy))

    assert outcomes == {"ok": 3, "offer_limit_reached": 9}
    assert _held(app, sale_id) == (3, 97)
    with app.app_context():
        assert db.session.execute(select(OfferBuyer.quantity).where(OfferBuyer.offer_id == sale_id)).scalar_one() == 3


def test_units_that_expire_unpaid_sell_again_while_buyers_race_the_expiry_sweep(app):
    sale_id, _, headers = _sale(app, quota=10, buyers=41)
    first = [_buy(app, sale_id, headers[i], f"flash-first-{i:04d}") for i in range(10)]
    assert all(response.status_code == 201 for response in first)
    assert _buy(app, sale_id, headers[10], "flash-nope-0001").json["error"]["code"] == "sold_out"
    with app.app_context():
        db.session.execute(
            update(Order)
            .where(Order.id.in_([r.json["id"] for r in first]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
        db.session.remove()

    def act(i: int) -> str:
        if i == 0:
            with app.app_context():
                sweep_expired_orders()
                db.session.remove()
            return "swept"
        response = _buy(app, sale_id, headers[10 + i], f"flash-again-{i:04d}")
        return "ok" if response.status_code == 201 else response.json["error"]["code"]

    outcomes = Counter(race(31, act))
    held, free = _held(app, sale_id)
    assert held + free == 10 and held == outcomes["ok"]  # never oversold
    # Whoever came after the units were back got them; those before found the sale sold out.
    assert set(outcomes) <= {"swept", "ok", "sold_out"}
    # Once every expired unit is back, nothing is refused while units are free.
    later = Counter(
        "ok" if r.status_code == 201 else r.json["error"]["code"]
        for r in (_buy(app, sale_id, headers[i], f"flash-late-{i:04d}") for i in range(10, 41))
        if r.status_code != 200
    )
    assert later["ok"] == free
    assert _held(app, sale_id) == (10, 0)


def test_buyers_of_several_units_racing_for_the_last_ones_never_wait_on_each_other(app):
    sale_id, _, headers = _sale(app, quota=5, buyers=12, limit=3)

    def buy(round_: int, i: int) -> str:
        response = _buy(app, sale_id, headers[i], f"flash-many-{round_}-{i:04d}", quantity=2 if i % 2 else 3)
        assert response.status_code in (201, 409), response.json  # never a 500 (no deadlock)
        return "ok" if response.status_code == 201 else response.json["error"]["code"]

    for round_ in range(3):
        outcomes = Counter(race(12, lambda i, r=round_: buy(r, i)))
        assert set(outcomes) <= {"ok", "sold_out", "offer_limit_reached"}
    held, free = _held(app, sale_id)
    assert held + free == 5 and held >= 3  # never oversold; at most the odd unit or two left over


def test_a_short_buyer_is_refused_at_once_while_a_placement_in_flight_holds_units(app):
    import time

    from sqlalchemy import text

    sale_id, _, headers = _sale(app, quota=3, buyers=2, limit=3)
    with app.app_context():
        # Another placement in flight: it holds two of the three units, not committed yet.
        held = db.session.execute(
            text("SELECT id FROM offer_units WHERE offer_id = :o ORDER BY id LIMIT 2 FOR UPDATE"), {"o": sale_id}
        ).all()
        assert len(held) == 2
        started = time.monotonic()
        refused = _buy(app, sale_id, headers[0], "flash-short-0001", quantity=2)
        took = time.monotonic() - started
        db.session.rollback()  # the other placement rolls back: its units are free again
        db.session.remove()
    assert (refused.status_code, refused.json["error"]["code"], refused.json["error"]["details"]["left"]) == (
        409,
        "sold_out",
        1,
    )
    assert took < 5  # it did not wait for the units held
    # Units held in flight never mark the sale sold out: once they are free, they sell.
    assert _buy(app, sale_id, headers[1], "flash-short-0002", quantity=3).status_code == 201


@pytest.mark.parametrize(("quota", "limit"), [(10, 5), (10, 1), (1, 5)])
def test_one_key_sent_many_times_at_once_places_one_order(app, quota, limit):
    """One request and its copies racing: the first claims the key, the others wait on it and are
    answered with its order (200), never refused by the limit or for want of units it took."""
    sale_id, _, headers = _sale(app, quota=quota, buyers=1, limit=limit)

    def buy(i: int) -> tuple[int, int]:
        response = _buy(app, sale_id, headers[0], "flash-same-key-000001")
        assert response.status_code in (200, 201), response.json
        return response.status_code, response.json["id"]

    answers = race(12, buy)

    assert sorted(status for status, _ in answers).count(201) == 1
    assert len({order_id for _, order_id in answers}) == 1
    assert _held(app, sale_id) == (1, quota - 1)
    with app.app_context():
        assert db.session.execute(select(OfferBuyer.quantity).where(OfferBuyer.offer_id == sale_id)).scalar_one() == 1
        assert db.session.execute(select(func.count()).select_from(Order)).scalar() == 1


def _first_statement_held(monkeypatch, hold: float = 0.3) -> list[int]:
    """flash_fast's statements, the first one held `hold` seconds before it runs (so the buyers
    arriving meanwhile wait for the next one together): how many placements each carried."""
    carried: list[int] = []
    real = flash_fast._run_many

    def run_many(statement, placements):
        carried.append(len(placements))
        if len(carried) == 1:
            time.sleep(hold)
        return real(statement, placements)

    monkeypatch.setattr(flash_fast, "_run_many", run_many)
    return carried


def test_buyers_placing_at_the_same_moment_share_statements_and_each_gets_their_own_order(app, monkeypatch):
    sale_id, _, headers = _sale(app, quota=30, buyers=30)
    carried = _first_statement_held(monkeypatch)

    def buy(i: int) -> tuple[int, int, int]:
        response = _buy(app, sale_id, headers[i], f"flash-gather-{i:06d}")
        assert response.status_code == 201, response.json
        return response.json["id"], response.json["payable_total"], response.json["lines"][0]["quantity"]

    placed = race(30, buy)

    for i, (order_id, _, quantity) in enumerate(placed):  # each buyer was answered their own order
        mine = app.test_client().get(f"/api/v1/orders/{order_id}", headers=headers[i])
        assert mine.status_code == 200 and mine.json["lines"][0]["quantity"] == quantity == 1

    assert sum(carried) == 30 and max(carried) > 1  # statements carried several placements
    assert len({order_id for order_id, _, _ in placed}) == 30
    assert _held(app, sale_id) == (30, 0)
    with app.app_context():
        orders = db.session.execute(select(Order.id, Order.member_id).where(Order.id.in_([p[0] for p in placed])))
        assert len({member for _, member in orders}) == 30  # each buyer's order is their own
        units = db.session.execute(
            select(OfferUnit.order_id, func.count()).where(OfferUnit.offer_id == sale_id).group_by(OfferUnit.order_id)
        ).all()
        assert sorted(order_id for order_id, _ in units) == sorted(p[0] for p in placed)
        assert all(count == 1 for _, count in units)


def test_a_shared_statement_that_fails_writes_nothing_and_its_buyers_are_placed_the_usual_way(app, monkeypatch):
    sale_id, _, headers = _sale(app, quota=12, buyers=12)
    carried = _first_statement_held(monkeypatch)
    # Every fast placement draws the same order number: a statement carrying two fails on the
    # unique order number, and PostgreSQL rolls all of it back.
    monkeypatch.setattr(flash_fast, "new_order_no", lambda merchant_id, now: "FLASH-SAME-NUMBER")

    def buy(i: int) -> int:
        response = _buy(app, sale_id, headers[i], f"flash-fail-{i:06d}")
        assert response.status_code == 201, response.json
        return response.json["id"]

    placed = race(12, buy)

    assert max(carried) > 1
    assert len(set(placed)) == 12 and _held(app, sale_id) == (12, 0)
    with app.app_context():
        numbers = db.session.execute(select(Order.order_no).where(Order.id.in_(placed))).scalars().all()
        assert len(set(numbers)) == 12  # the usual path drew its own numbers
        assert db.session.execute(select(func.count()).where(OfferBuyer.offer_id == sale_id)).scalar_one() == 12
