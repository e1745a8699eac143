"""Lottery campaigns under races on real connections (each call or request commits on its own):
the last first prizes drawn by many members at once, the last unit of a better tier bought by
several, a gift redeemed while its upgrade is placed, one code redeemed twice, the upgrade job
under duplicate payment notifications and concurrent runs, one member's draw stampede. After
each, the quotas, prizes and upgrades in the database show every race won exactly once."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, insert, select, text, update

from api.worker import run_burst
from coupons import campaigns, jobs, prizes
from coupons.models import CampaignDraw, CampaignEntry, CampaignTier, Prize, PrizeUpgrade
from shop.core.db import db, transaction, utcnow
from shop.core.errors import Conflict
from shop.identity.models import Member, Merchant, Staff
from shop.orders.models import Order, Payment
from shop.payments.providers import PROVIDER_EXTENSION
from tests.factories import in_app as _in_app
from tests.factories import make_merchant, member_headers, race, staff_headers

pytestmark = pytest.mark.committing
_seq = itertools.count(1)
ROUNDS = 8  # races whose winner is left to chance are run this many times

FIRST = {"name": "一等奖 按摩椅", "prize_kind": "gift", "cost": 30000, "quota": 1, "odds_bp": 0}
SECOND = {"name": "二等奖 茶具", "prize_kind": "gift", "cost": 10000, "quota": 2, "odds_bp": 0}
THIRD = {"name": "三等奖 纸巾", "prize_kind": "gift", "cost": 1000, "odds_bp": 10_000, "guaranteed": True}


@dataclass(frozen=True)
class Lottery:
    merchant_id: int
    code: str
    campaign_id: int
    tiers: list[int]  # tier ids, first prize first
    offers: list[int]  # upgrade offer ids, as asked for
    members: list[int]


def lottery(
    app: Flask,
    tiers: Sequence[dict[str, Any]] = (FIRST, SECOND, THIRD),
    *,
    members: int = 0,
    offers: Sequence[tuple[int, int, int]] = (),
) -> Lottery:
    """A running `once` campaign of `tiers` (by default the seeds' three, where every draw wins
    third prize: first and second have no odds), with upgrade `offers` ((from rank index, to rank
    index, price)) and `members` members of the merchant, all committed."""

    def build() -> Lottery:
        merchant = make_merchant()
        now = utcnow()
        with transaction():
            campaign = campaigns.create_campaign(
                merchant.id,
                name="社群周年庆抽奖",
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(days=7),
                entry_rule="once",
                tiers=tiers,
            )
            tier_ids = [tier.id for tier in campaigns.tiers_of(campaign.id)]
            offer_ids = [
                campaigns.create_offer(
                    merchant.id, campaign.id, from_tier_id=tier_ids[source], to_tier_id=tier_ids[target], price=price
                ).id
                for source, target, price in offers
            ]
            tag = next(_seq)
            rows = [{"merchant_id": merchant.id, "openid": f"lottery-{tag}-{i}"} for i in range(members)]
            member_ids = list(db.session.execute(insert(Member).returning(Member.id), rows).scalars()) if rows else []
        return Lottery(merchant.id, merchant.code, campaign.id, tier_ids, offer_ids, member_ids)

    return _in_app(app, build)


def attempt(app: Flask, call: Callable[[], Any]) -> Any:
    """`call()` in a transaction of its own, on a connection of its own: what it returned, or the
    code of the 409 that refused it (anything else fails the test)."""

    def run() -> Any:
        try:
            with transaction():
                return call()
        except Conflict as refused:
            return refused.code

    return _in_app(app, run)


def draw(app: Flask, game: Lottery, member_id: int, key: str | None = None) -> Any:
    """The member's draw: (rank won, fell back, prize id), or the refusal's code."""

    def call() -> Any:
        view, _ = campaigns.draw(
            game.merchant_id, member_id, game.campaign_id, idempotency_key=key or f"draw-{next(_seq):06d}"
        )
        return view["prize"]["tier_rank"], view["fell_back"], view["prize"]["id"]

    return attempt(app, call)


def third_prizes(app: Flask, game: Lottery) -> list[dict[str, Any]]:
    """Each member draws once (third prize: the only tier with odds): their prizes, in order."""
    won = []
    for member_id in game.members:
        rank, _, prize_id = draw(app, game, member_id)
        assert rank == 3
        prize = _in_app(app, lambda prize_id=prize_id: db.session.get(Prize, prize_id))
        won.append({"id": prize.id, "code": prize.code, "member_id": member_id})
    return won


def place_upgrade(app: Flask, game: Lottery, prize: dict[str, Any], offer: int = 0, key: str | None = None) -> Any:
    """The prize's holder buys the upgrade `game.offers[offer]`: the order's id, or the refusal's code."""

    def call() -> Any:
        placed = prizes.place_upgrade(
            game.merchant_id,
            prize["member_id"],
            prize["id"],
            game.offers[offer],
            idempotency_key=key or f"upgrade-{next(_seq):06d}",
        )
        return placed.order.id

    return attempt(app, call)


def redeem(app: Flask, game: Lottery, code: str) -> Any:
    """Staff redeem the code: the prize's status, or the refusal's code."""
    return attempt(app, lambda: prizes.redeem(game.merchant_id, code, staff_id=None)[0]["status"])


def read(app: Flask, query: Any) -> Any:
    return _in_app(app, lambda: db.session.execute(query).all())


def owner_id(game: Lottery) -> int:
    return db.session.execute(select(Staff.id).where(Staff.merchant_id == game.merchant_id)).scalar_one()


def taken(app: Flask, tier_id: int) -> int:
    return _in_app(app, lambda: db.session.get(CampaignTier, tier_id).taken)


def prize_statuses(app: Flask, ids: Sequence[int]) -> list[str]:
    rows = dict(read(app, select(Prize.id, Prize.status).where(Prize.id.in_(ids))))
    return [rows[prize_id] for prize_id in ids]


# --- draws ---------------------------------------------------------------------------------------


def test_many_members_racing_for_the_last_first_prize_never_exceed_its_quota(app):
    first = {**FIRST, "quota": 3, "odds_bp": 10_000}  # every draw falls on first prize
    game = lottery(app, [first, {**THIRD, "odds_bp": 0}], members=30)

    outcomes = race(30, lambda i: draw(app, game, game.members[i]))

    assert Counter(outcome[:2] for outcome in outcomes) == {(1, False): 3, (2, True): 27}, outcomes
    assert taken(app, game.tiers[0]) == 3
    given = dict(read(app, select(Prize.tier_id, func.count()).group_by(Prize.tier_id)))
    assert given == {game.tiers[0]: 3, game.tiers[1]: 27}
    draws = read(
        app,
        select(CampaignDraw.tier_id, CampaignDraw.fell_back, func.count()).group_by(
            CampaignDraw.tier_id, CampaignDraw.fell_back
        ),
    )
    assert sorted(draws) == sorted([(game.tiers[0], False, 3), (game.tiers[1], True, 27)])
    entries = read(app, select(CampaignEntry.status, func.count()).group_by(CampaignEntry.status))
    assert entries == [("drawn", 30)]


def test_one_members_draw_stampede_with_many_idempotency_keys_on_a_once_campaign_draws_once(app):
    game = lottery(app)
    headers = _in_app(app, lambda: member_headers(app.test_client(), game.code, "stampede"))

    def post(i: int) -> Any:
        return app.test_client().post(
            f"/api/v1/campaigns/{game.campaign_id}/draws",
            headers={**headers, "Idempotency-Key": f"stampede-key-{i % 4}"},
        )

    responses = race(12, post)  # four keys, three requests each

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 1, 200: 2, 409: 9}, [(r.status_code, r.json) for r in responses]
    assert {r.json["error"]["code"] for r in responses if r.status_code == 409} == {"no_entries"}
    answered = [r.json for r in responses if r.status_code in (200, 201)]
    assert all(view == answered[0] for view in answered)  # the winning key's retries: the same draw
    assert len(read(app, select(CampaignDraw.id))) == 1
    assert read(app, select(CampaignEntry.status)) == [("drawn",)]
    assert len(read(app, select(Prize.id))) == 1


# --- upgrades and redemption ---------------------------------------------------------------------


def test_members_racing_to_upgrade_to_a_tiers_last_unit_place_one_order_and_keep_their_prizes(app):
    game = lottery(app, [{**FIRST, "quota": 2}, SECOND, THIRD], members=9, offers=[(2, 0, 9900)])
    won = third_prizes(app, game)
    earlier = place_upgrade(app, game, won[0])  # one of the two first prizes is held already
    assert isinstance(earlier, int), earlier

    outcomes = race(8, lambda i: place_upgrade(app, game, won[i + 1]))

    placed = [outcome for outcome in outcomes if isinstance(outcome, int)]
    assert len(placed) == 1 and outcomes.count("prize_sold_out") == 7, outcomes
    assert taken(app, game.tiers[0]) == 2  # the quota, not one more
    winner = won[outcomes.index(placed[0]) + 1]
    losers = [prize["id"] for prize in won[1:] if prize is not winner]
    assert prize_statuses(app, losers) == ["available"] * 7  # nothing held for nothing
    assert prize_statuses(app, [won[0]["id"], winner["id"]]) == ["held", "held"]
    upgrades = read(app, select(PrizeUpgrade.from_prize_id, PrizeUpgrade.status, PrizeUpgrade.order_id))
    assert sorted(upgrades) == sorted([(won[0]["id"], "pending", earlier), (winner["id"], "pending", placed[0])])
    orders = read(app, select(Order.id).where(Order.kind == prizes.UPGRADE_KIND))
    assert len(orders) == 2  # the refused placements left no order behind


def one_of_them_won(app: Flask, prize: dict[str, Any], redeemed: Any, upgraded: Any) -> str:
    """Which of the redemption and the upgrade of `prize` won; never both, and the database agrees."""
    status = prize_statuses(app, [prize["id"]])[0]
    upgrades = read(app, select(PrizeUpgrade.status).where(PrizeUpgrade.from_prize_id == prize["id"]))
    if (redeemed, upgraded) == ("redeemed", "prize_not_upgradable"):
        assert (status, upgrades) == ("redeemed", [])
        return "redemption"
    assert redeemed == "prize_not_redeemable" and isinstance(upgraded, int), (redeemed, upgraded)
    assert (status, upgrades) == ("held", [("pending",)])
    return "upgrade"


def test_redeeming_a_gift_while_its_upgrade_is_placed_lets_exactly_one_of_them_win(app):
    game = lottery(app, [FIRST, {**SECOND, "quota": ROUNDS}, THIRD], members=ROUNDS, offers=[(2, 1, 1990)])
    won = third_prizes(app, game)
    winners = []

    for n, prize in enumerate(won):

        def side(i: int, n: int = n, prize: dict[str, Any] = prize) -> Any:
            if i == 1:
                return place_upgrade(app, game, prize)
            time.sleep((n % 8) * 0.003)  # the quicker side starts 0 to 21 ms late: every interleaving
            return redeem(app, game, prize["code"])

        redeemed, upgraded = race(2, side)

        winners.append(one_of_them_won(app, prize, redeemed, upgraded))

    assert taken(app, game.tiers[1]) == winners.count("upgrade")
    assert len(read(app, select(Order.id).where(Order.kind == prizes.UPGRADE_KIND))) == winners.count("upgrade")


def queued_on(app: Flask, prize_id: int, calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run `calls` on threads of their own while another transaction holds the prize's row: each
    starts once the ones before it wait for that row, so they queue in the order given; then the
    row is let go, and they go through in turn, each finding what the one before committed."""
    with app.app_context():
        holder, watcher = db.engine.connect(), db.engine.connect()
    try:
        holding = holder.begin()
        holder.execute(select(Prize.id).where(Prize.id == prize_id).with_for_update())
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            started = []
            try:
                for call in calls:
                    started.append(pool.submit(call))
                    deadline = time.monotonic() + 30
                    while watcher.execute(waiting).scalar_one() < len(started):
                        watcher.rollback()  # a fresh look at the activity: it is kept for a transaction
                        done = [future.result() for future in started if future.done()]
                        assert not done, f"a call did not wait for the row: {done}"
                        assert time.monotonic() < deadline, "the calls never queued on the row"
                        time.sleep(0.005)
                    watcher.rollback()
            finally:
                holding.commit()  # let them go (else, on a failure, the pool would wait for them forever)
            return [future.result(timeout=60) for future in started]
    finally:
        holder.close()
        watcher.close()


def test_a_redemption_and_an_upgrade_queued_on_one_gift_go_through_in_turn_and_the_second_is_refused(app):
    game = lottery(app, [FIRST, {**SECOND, "quota": ROUNDS}, THIRD], members=ROUNDS, offers=[(2, 1, 1990)])
    won = third_prizes(app, game)

    for n, prize in enumerate(won):
        redemption = partial(redeem, app, game, prize["code"])
        upgrade = partial(place_upgrade, app, game, prize)
        if n % 2:
            upgraded, redeemed = queued_on(app, prize["id"], [upgrade, redemption])
        else:
            redeemed, upgraded = queued_on(app, prize["id"], [redemption, upgrade])

        assert one_of_them_won(app, prize, redeemed, upgraded) == ("upgrade" if n % 2 else "redemption")

    assert taken(app, game.tiers[1]) == ROUNDS // 2


def test_two_redemptions_of_one_code_at_once_redeem_it_once_and_answer_the_same_prize(app):
    game = lottery(app, members=ROUNDS)
    won = third_prizes(app, game)
    staff = _in_app(app, lambda: staff_headers(app.test_client(), game.code))

    for n, prize in enumerate(won):

        def post(prize: dict[str, Any] = prize) -> Any:
            return app.test_client().post("/api/v1/merchant/prizes/redeem", json={"code": prize["code"]}, headers=staff)

        # at once, and (every other round) queued on the prize's row, the second waiting for the first
        responses = queued_on(app, prize["id"], [post, post]) if n % 2 else race(2, lambda i, post=post: post())

        assert [r.status_code for r in responses] == [200, 200], [r.json for r in responses]
        first, second = (r.json for r in responses)
        assert sorted([first.pop("already_redeemed"), second.pop("already_redeemed")]) == [False, True]
        assert first == second
        assert (first["id"], first["status"]) == (prize["id"], "redeemed")
        rows = read(app, select(Prize.status, Prize.redeemed_by).where(Prize.id == prize["id"]))
        assert rows == [("redeemed", _in_app(app, lambda: owner_id(game)))]


def test_the_upgrade_job_under_duplicate_notifications_and_concurrent_runs_gives_one_better_prize(app):
    game = lottery(app, members=1, offers=[(2, 0, 9900)])
    (held,) = third_prizes(app, game)
    order_id = place_upgrade(app, game, held)
    assert isinstance(order_id, int), order_id
    provider = app.extensions[PROVIDER_EXTENSION]

    def notification() -> tuple[dict[str, str], str]:
        order = db.session.get(Order, order_id)
        member = db.session.get(Member, order.member_id)
        with transaction():  # as if the member had tapped "pay": the provider has a prepay
            db.session.execute(update(Order).where(Order.id == order_id).values(prepay_id=f"wx_fake_{order.order_no}"))
        return provider.payment_notification(
            db.session.get(Merchant, game.merchant_id),
            out_trade_no=order.order_no,
            total=order.payable_total,
            openid=member.openid,
        )

    headers, body = _in_app(app, notification)

    def contend(i: int) -> Any:
        if i % 2:  # the job itself, as several workers would run it (too soon, or at once)
            return _in_app(app, lambda: jobs.issue_upgrade(order_id))
        return (
            app.test_client()
            .post(f"/api/v1/payments/wechatpay/{game.code}/notify", data=body, headers=headers)
            .status_code
        )

    outcomes = race(12, contend)

    assert [outcomes[i] for i in range(0, 12, 2)] == [204] * 6  # every notification acknowledged
    early = [outcomes[i] for i in range(1, 12, 2)]
    assert early.count(True) <= 1, early
    run_burst(app)  # the job the payment queued, run after them
    assert _in_app(app, lambda: jobs.issue_upgrade(order_id)) is False  # and once more: nothing to do

    payments = read(app, select(Payment.outcome).where(Payment.order_id == order_id))
    assert payments == [("applied",)]
    better = read(app, select(Prize.id, Prize.tier_id, Prize.status).where(Prize.origin == "upgrade"))
    assert [(tier_id, status) for _, tier_id, status in better] == [(game.tiers[0], "available")]
    old = read(app, select(Prize.status, Prize.void_reason).where(Prize.id == held["id"]))
    assert old == [("voided", "upgraded")]
    upgrade = read(app, select(PrizeUpgrade.status, PrizeUpgrade.to_prize_id))
    assert upgrade == [("issued", better[0][0])]
    assert taken(app, game.tiers[0]) == 1


def test_a_quota_set_on_the_guaranteed_tier_waits_for_the_draws_in_flight_and_then_holds(app, monkeypatch):
    """A draw of the guaranteed tier (no quota, no count) is paused after it chose its tier;
    staff cap the tier meanwhile: the cap waits for the draw to commit, counts its prize, and the
    next draw finds the tier spent."""
    import threading

    game = lottery(app, members=2)
    chosen, go_on = threading.Event(), threading.Event()
    make_prize = prizes.make_prize

    def paused(*args: Any, **kwargs: Any) -> Any:
        chosen.set()
        assert go_on.wait(20)
        return make_prize(*args, **kwargs)

    monkeypatch.setattr(prizes, "make_prize", paused)
    with ThreadPoolExecutor(2) as pool:
        drawing = pool.submit(draw, app, game, game.members[0])
        assert chosen.wait(20)
        monkeypatch.setattr(prizes, "make_prize", make_prize)

        def cap() -> Any:
            return campaigns.update_tier(game.merchant_id, game.campaign_id, game.tiers[2], quota=1)

        capping = pool.submit(attempt, app, cap)
        time.sleep(0.5)
        assert not capping.done()  # waits for the draw in flight
        go_on.set()
        assert drawing.result(20)[:2] == (3, False)
        assert capping.result(20)["taken"] == 1

    assert draw(app, game, game.members[1]) == "campaign_exhausted"
    given = _in_app(
        app, lambda: db.session.execute(select(func.count()).where(Prize.tier_id == game.tiers[2])).scalar()
    )
    assert given == 1
