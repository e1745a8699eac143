"""Invites at the service level: first touch, history, what is ignored, the event, code collisions,
the birthday rule, a race of first logins on real connections, and the migration's backfill."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from flask import Flask
from flask_migrate import Migrate, upgrade
from sqlalchemy import create_engine, func, make_url, select, text

from api.embedded import create_database
from shop.core.db import db, transaction, utcnow
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.core.events import MemberInvited, bus
from shop.identity import invite_codes, invites, members
from shop.identity.invite_codes import CODE_PATTERN
from shop.identity.models import Member, MemberInvite, Merchant
from shop.identity.wechat import FakeWeChatAuth
from tests.conftest import ROOT
from tests.factories import make_merchant, race

WECHAT = FakeWeChatAuth()


@pytest.fixture
def invited() -> Iterator[list[dict]]:
    """Every member_invited event published while the test runs, with its payload."""
    seen: list[dict] = []

    def record(event: MemberInvited) -> None:
        seen.append(dataclasses.asdict(event))

    bus.subscribe(MemberInvited, record)
    yield seen
    bus.unsubscribe(MemberInvited, record)


def login(merchant: Merchant, name: str, **kwargs) -> members.Login:
    return members.login_with_wx_code(merchant.code, f"test:{name}", WECHAT, **kwargs)


def history(merchant_id: int) -> list[tuple[int, int, str, bool, bool]]:
    rows = db.session.execute(
        select(MemberInvite).where(MemberInvite.merchant_id == merchant_id).order_by(MemberInvite.id)
    ).scalars()
    return [(r.inviter_id, r.invitee_id, r.channel, r.new_member, r.bound) for r in rows]


def fresh(member_id: int) -> Member:
    db.session.expire_all()
    return db.session.get(Member, member_id)


def age(member: Member, by: timedelta) -> None:
    """Make the member older (as if they had joined `by` ago)."""
    with transaction():
        db.session.get(Member, member.id).created_at = utcnow() - by


# --- codes


def test_a_new_member_gets_an_invite_code_of_the_documented_format(ctx):
    merchant = make_merchant()
    member = login(merchant, "alice").member
    assert CODE_PATTERN.fullmatch(fresh(member.id).invite_code)


def test_a_colliding_code_is_drawn_again(ctx, monkeypatch):
    merchant = make_merchant()
    taken = login(merchant, "alice").member.invite_code
    drawn = iter([taken, taken, "ZZZZ2345"])
    monkeypatch.setattr(invite_codes, "new_invite_code", lambda: next(drawn))

    bob = login(merchant, "bob")

    assert bob.created
    assert fresh(bob.member.id).invite_code == "ZZZZ2345"
    assert db.session.execute(select(func.count()).where(Member.merchant_id == merchant.id)).scalar() == 2


def test_the_same_code_at_another_merchant_is_no_collision(ctx, monkeypatch):
    first, second = make_merchant(), make_merchant()
    monkeypatch.setattr(invite_codes, "new_invite_code", lambda: "SAME2345")
    assert login(first, "alice").member.invite_code == "SAME2345"
    assert login(second, "alice").member.invite_code == "SAME2345"


def test_a_login_that_draws_only_taken_codes_is_a_conflict_and_creates_nobody(ctx, monkeypatch):
    merchant = make_merchant()
    taken = login(merchant, "alice").member.invite_code
    monkeypatch.setattr(invite_codes, "new_invite_code", lambda: taken)
    with pytest.raises(Conflict):
        login(merchant, "bob")
    assert db.session.execute(select(func.count()).where(Member.merchant_id == merchant.id)).scalar() == 1


def test_a_returning_member_keeps_their_code(ctx):
    merchant = make_merchant()
    first = login(merchant, "alice").member.invite_code
    assert login(merchant, "alice").member.invite_code == first


# --- first touch and history


def test_a_new_member_invited_gets_the_inviter_and_one_history_row_and_one_event(ctx, invited):
    merchant = make_merchant()
    alice = login(merchant, "alice").member

    bob = login(merchant, "bob", invite=alice.invite_code, channel="qrcode")

    assert bob.created and bob.invite.recorded and bob.invite.bound and bob.invite.reason is None
    assert bob.invite.inviter.id == alice.id
    member = fresh(bob.member.id)
    assert (member.invited_by_id, member.channel) == (alice.id, "qrcode")
    assert history(merchant.id) == [(alice.id, bob.member.id, "qrcode", True, True)]
    assert invited == [
        {"merchant_id": merchant.id, "member_id": bob.member.id, "inviter_id": alice.id, "new_member": True}
    ]


def test_a_new_member_invited_without_a_channel_came_by_invite(ctx):
    merchant = make_merchant()
    alice = login(merchant, "alice").member
    bob = login(merchant, "bob", invite=alice.invite_code.lower())  # typed in lower case
    assert fresh(bob.member.id).channel == "invite"
    assert history(merchant.id)[0][2] == "invite"


def test_first_touch_is_kept_when_the_member_opens_another_code(ctx, invited):
    merchant = make_merchant()
    alice, carol = login(merchant, "alice").member, login(merchant, "carol").member
    bob = login(merchant, "bob", invite=alice.invite_code).member

    again = login(merchant, "bob", invite=carol.invite_code, channel="poster")

    assert not again.created
    assert (again.invite.recorded, again.invite.bound) == (True, False)
    assert fresh(bob.id).invited_by_id == alice.id
    assert history(merchant.id)[-1] == (carol.id, bob.id, "poster", False, False)
    assert [e["inviter_id"] for e in invited] == [alice.id, carol.id]
    assert invited[-1]["new_member"] is False


def test_a_member_on_their_first_day_without_an_inviter_is_bound_by_an_open(ctx, invited):
    merchant = make_merchant()
    alice, bob = login(merchant, "alice").member, login(merchant, "bob").member  # bob came by himself

    with transaction():
        outcome = invites.open_code(merchant.id, bob.id, alice.invite_code, "share_card")

    assert (outcome.recorded, outcome.bound) == (True, True)
    assert fresh(bob.id).invited_by_id == alice.id
    assert history(merchant.id) == [(alice.id, bob.id, "share_card", False, True)]
    assert invited[0]["new_member"] is False


def test_an_older_member_is_never_bound_but_their_open_is_history(ctx, invited):
    merchant = make_merchant()
    alice, bob = login(merchant, "alice").member, login(merchant, "bob").member
    age(bob, invites.BIND_WINDOW + timedelta(minutes=1))

    outcome = login(merchant, "bob", invite=alice.invite_code).invite

    assert (outcome.recorded, outcome.bound) == (True, False)
    assert fresh(bob.id).invited_by_id is None
    assert history(merchant.id) == [(alice.id, bob.id, "invite", False, False)]
    assert len(invited) == 1


def test_an_open_never_makes_a_cycle(ctx):
    merchant = make_merchant()
    alice = login(merchant, "alice").member  # no inviter, on her first day
    bob = login(merchant, "bob", invite=alice.invite_code).member
    carol = login(merchant, "carol", invite=bob.invite_code).member

    with transaction():
        outcome = invites.open_code(merchant.id, alice.id, carol.invite_code, None)

    assert (outcome.recorded, outcome.bound) == (True, False)  # carol's chain goes up to alice
    assert fresh(alice.id).invited_by_id is None


def test_the_same_open_again_within_minutes_is_counted_once(ctx, invited):
    merchant = make_merchant()
    alice, bob = login(merchant, "alice").member, login(merchant, "bob").member
    age(bob, timedelta(days=30))
    login(merchant, "bob", invite=alice.invite_code)

    with transaction():
        repeat = invites.open_code(merchant.id, bob.id, alice.invite_code, "qrcode")
    with transaction():
        later = invites.open_invite(
            fresh(bob.id), fresh(alice.id), "qrcode", now=utcnow() + invites.REPEAT_WINDOW + timedelta(seconds=1)
        )

    assert (repeat.recorded, repeat.reason) == (False, invites.REPEAT)
    assert (later.recorded, later.reason) == (True, None)
    assert len(history(merchant.id)) == 2
    assert len(invited) == 2


@pytest.mark.parametrize("whose", ["unknown", "another merchant's", "not a code", "own"])
def test_a_code_naming_nobody_here_or_the_member_themself_is_ignored_at_login(ctx, invited, whose):
    merchant, other = make_merchant(), make_merchant()
    stranger = login(other, "stranger").member
    alice = login(merchant, "alice").member
    code = {
        "unknown": "ZZZZZZZZ",
        "another merchant's": stranger.invite_code,
        "not a code": "https://example.com/?x=1",
        "own": alice.invite_code,
    }[whose]
    name = "alice" if whose == "own" else "newcomer"

    result = login(merchant, name, invite=code)

    assert result.member.id  # the login succeeded
    assert (result.invite.recorded, result.invite.bound, result.invite.inviter) == (False, False, None)
    assert result.invite.reason == (invites.SELF_INVITE if whose == "own" else invites.NOT_FOUND)
    assert fresh(result.member.id).invited_by_id is None
    assert fresh(result.member.id).channel == "organic"
    assert history(merchant.id) == history(other.id) == []
    assert invited == []


def test_opening_a_code_of_another_merchant_is_not_found_and_changes_nothing(ctx, invited):
    merchant, other = make_merchant(), make_merchant()
    stranger = login(other, "stranger").member
    alice = login(merchant, "alice").member
    with pytest.raises(NotFound), transaction():
        invites.open_code(merchant.id, alice.id, stranger.invite_code, None)
    assert history(merchant.id) == history(other.id) == []
    assert fresh(alice.id).invited_by_id is None
    assert invited == []


def test_a_member_of_another_merchant_cannot_open_a_code_in_this_one(ctx):
    merchant, other = make_merchant(), make_merchant()
    stranger = login(other, "stranger").member
    alice = login(merchant, "alice").member
    with pytest.raises(NotFound), transaction():
        invites.open_code(merchant.id, stranger.id, alice.invite_code, None)  # a token naming the wrong merchant
    assert history(merchant.id) == history(other.id) == []


def test_opening_ones_own_code_records_nothing(ctx, invited):
    merchant = make_merchant()
    alice = login(merchant, "alice").member
    with transaction():
        outcome = invites.open_code(merchant.id, alice.id, alice.invite_code, None)
    assert (outcome.recorded, outcome.bound, outcome.reason) == (False, False, invites.SELF_INVITE)
    assert history(merchant.id) == [] and invited == []


def test_the_invitees_page_lists_first_touches_newest_first(ctx):
    merchant = make_merchant()
    alice, carol = login(merchant, "alice").member, login(merchant, "carol").member
    ids = [login(merchant, f"friend{i}", invite=alice.invite_code).member.id for i in range(5)]
    login(merchant, "carols-friend", invite=carol.invite_code)

    first = invites.invitees_page(merchant.id, alice.id, cursor=None, limit=3)
    second = invites.invitees_page(merchant.id, alice.id, cursor=first.next_cursor, limit=3)

    assert [m.id for m in first.items + second.items] == ids[::-1]
    assert second.next_cursor is None


# --- birthday


@pytest.mark.parametrize(
    ("birthday", "problem"),
    [
        (date(2000, 2, 29), None),
        (date(1900, 1, 1), None),
        (date(1899, 12, 31), "must not be before 1900-01-01"),
        (date(2024, 6, 2), "must not be in the future"),  # the day after "today" below
        (date(2024, 6, 1), None),
    ],
)
def test_the_birthday_rule(birthday, problem):
    assert members.birthday_problem(birthday, today=date(2024, 6, 1)) == problem


def test_a_birthday_is_set_cleared_and_left_alone(ctx):
    merchant = make_merchant()
    alice = login(merchant, "alice").member
    with transaction():
        members.update_profile(merchant.id, alice.id, birthday=date(1990, 5, 17))
    with transaction():
        members.update_profile(merchant.id, alice.id, nickname="小爱")
    assert fresh(alice.id).birthday == date(1990, 5, 17)
    with transaction():
        members.update_profile(merchant.id, alice.id, birthday=None)
    assert fresh(alice.id).birthday is None


def test_a_birthday_in_the_future_is_refused_by_the_service_too(ctx):
    merchant = make_merchant()
    alice = login(merchant, "alice").member
    with pytest.raises(InvalidInput) as refused, transaction():
        members.update_profile(merchant.id, alice.id, birthday=date.today() + timedelta(days=2), nickname="x")
    assert list(refused.value.details["fields"]) == ["birthday"]
    assert fresh(alice.id).birthday is None and fresh(alice.id).nickname == ""


# --- real concurrency


@pytest.mark.committing
def test_simultaneous_first_logins_with_an_invite_make_one_member_one_inviter_one_event(app):
    seen: list[dict] = []

    def record(event: MemberInvited) -> None:
        seen.append(dataclasses.asdict(event))

    with app.app_context():
        merchant = make_merchant()
        alice = login(merchant, "alice").member
        db.session.remove()
    body = {"merchant": merchant.code, "code": "test:bob", "invite": alice.invite_code, "channel": "qrcode"}
    bus.subscribe(MemberInvited, record)
    try:
        responses = race(12, lambda i: app.test_client().post("/api/v1/auth/wx-login", json=body))
    finally:
        bus.unsubscribe(MemberInvited, record)

    assert {r.status_code for r in responses} == {200}, [r.json for r in responses]
    ids = {r.json["member"]["id"] for r in responses}
    assert len(ids) == 1
    assert sorted(r.json["invite"]["reason"] or "recorded" for r in responses) == ["recorded"] + ["repeat"] * 11
    (bob_id,) = ids
    assert seen == [{"merchant_id": merchant.id, "member_id": bob_id, "inviter_id": alice.id, "new_member": True}]
    with app.app_context():
        assert db.session.get(Member, bob_id).invited_by_id == alice.id
        assert history(merchant.id) == [(alice.id, bob_id, "qrcode", True, True)]
        count = db.session.execute(select(func.count()).where(Member.merchant_id == merchant.id)).scalar()
        assert count == 2


@pytest.mark.committing
def test_two_first_day_members_opening_each_others_code_at_once_make_no_cycle(app):
    with app.app_context():
        merchant = make_merchant()
        alice, bob = login(merchant, "alice").member, login(merchant, "bob").member
        db.session.remove()

    def open_other(i: int) -> bool:
        me, other = (alice, bob) if i == 0 else (bob, alice)
        with app.app_context():
            with transaction():
                outcome = invites.open_code(merchant.id, me.id, other.invite_code, None)
            db.session.remove()
            return outcome.bound

    bound = race(2, open_other)
    with app.app_context():
        inviters = {m.id: m.invited_by_id for m in db.session.execute(select(Member)).scalars()}
        db.session.remove()
    assert sorted(bound) == [False, True]
    assert not (inviters[alice.id] == bob.id and inviters[bob.id] == alice.id)


# --- the migration


@pytest.fixture
def scratch_database(app) -> Iterator[str]:
    """A database of its own, for running the migrations on rows made before them."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    scratch = url.set(database=f"{url.database}_invites_migration")
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}"'))
    create_database(admin, scratch.database)
    yield scratch.render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)'))
    engine.dispose()


def test_the_migration_gives_every_existing_member_a_unique_code(scratch_database):
    """Rows made before the migration (more than one batch of them) all get a code, unique per merchant."""
    app = Flask("invites-migration")
    app.config["SQLALCHEMY_DATABASE_URI"] = scratch_database
    db.init_app(app)
    Migrate(app, db, directory=str(ROOT / "migrations"))
    engine = create_engine(scratch_database)
    try:
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"), revision="0006")
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO merchants (code, name, wx_appid, wx_secret) "
                        "VALUES ('a', 'A', 'wxa', ''), ('b', 'B', 'wxb', '')"
                    )
                )
                conn.execute(
                    text(
                        "INSERT INTO members (merchant_id, openid) "
                        "SELECT 1 + n % 2, 'o' || n FROM generate_series(1, 60000) AS n"
                    )
                )
            upgrade(directory=str(ROOT / "migrations"), revision="0007c_invites")
            with engine.connect() as conn:
                codes = conn.execute(text("SELECT merchant_id, invite_code FROM members")).all()
            db.session.remove()
            db.engine.dispose()
    finally:
        engine.dispose()
    assert len(codes) == 60000
    assert all(CODE_PATTERN.fullmatch(code) for _, code in codes)
    assert len(set(codes)) == len(codes)  # unique within each merchant
    assert len({code for _, code in codes}) > 59000  # and random, not one code per merchant


@pytest.mark.committing
def test_a_login_and_an_open_of_two_codes_at_once_bind_one_inviter_and_record_both(app):
    """The login (which holds the member's row) and /open (which locks it) take the member's opens
    one at a time: whichever comes first binds, the other is history; no deadlock, ten times over."""
    with app.app_context():
        merchant = make_merchant()
        alice, carol = login(merchant, "alice").member, login(merchant, "carol").member
        db.session.remove()

    for round_ in range(10):
        with app.app_context():
            bob = login(merchant, f"bob{round_}").member  # on his first day, no inviter yet
            db.session.remove()

        def act(i: int, bob: Member = bob, round_: int = round_) -> tuple[int, bool]:
            with app.app_context():
                if i == 0:
                    outcome = login(merchant, f"bob{round_}", invite=alice.invite_code).invite
                else:
                    with transaction():
                        outcome = invites.open_code(merchant.id, bob.id, carol.invite_code, "qrcode")
                db.session.remove()
                return outcome.inviter.id, outcome.bound

        results = race(2, act)

        assert sorted(bound for _, bound in results) == [False, True], results
        (winner,) = [inviter for inviter, bound in results if bound]
        with app.app_context():
            assert db.session.get(Member, bob.id).invited_by_id == winner
            opened = db.session.execute(select(MemberInvite).where(MemberInvite.invitee_id == bob.id)).scalars()
            assert sorted(row.inviter_id for row in opened) == sorted([alice.id, carol.id])
            db.session.remove()
