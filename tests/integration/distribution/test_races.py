"""Distribution under races on real connections (each call commits on its own): two settlement
workers on the same due commissions, withdrawals on one balance, approve against reject, and
refunds racing settlement. After each, the ledger reconciles."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from distribution import distributors, jobs, ledger, program, settlement, withdrawals
from distribution.models import Commission, Distributor, LedgerEntry, Withdrawal
from shop.core.db import db, transaction, utcnow
from shop.core.errors import Conflict
from tests.factories import in_app as _in_app
from tests.factories import make_member, make_merchant, make_product, paid_by_service, placed_by_service, race

pytestmark = pytest.mark.committing


def _program_with_chain(app: Flask, orders: int = 0, lines: int = 3) -> dict[str, Any]:
    """alice <- bob <- carol; carol paid `orders` orders of `lines` lines each (commissions at
    both levels), all due for settlement."""

    def build() -> dict[str, Any]:
        from shop.identity import members

        merchant = make_merchant()
        product = make_product(
            merchant, skus=[{"specs": {"n": str(i)}, "price": 1000 + i, "stock": 10_000} for i in range(lines)]
        )
        with transaction():
            program.update_program(merchant.id, enabled=True, levels=2, rates_bp=[1000, 500], join_rule="open")
        wechat = app.extensions["groupshop.wechat"]
        alice = make_member(merchant, "alice")
        with transaction():
            distributors.apply(merchant.id, alice.id)
        bob = members.login_with_wx_code(merchant.code, "test:bob", wechat, invite=alice.invite_code).member
        with transaction():
            distributors.apply(merchant.id, bob.id)
        carol = members.login_with_wx_code(merchant.code, "test:carol", wechat, invite=bob.invite_code).member
        for _ in range(orders):
            placed = placed_by_service(merchant.id, carol.id, [(sku.id, 1) for sku in product.skus])
            paid_by_service(placed.order.id)
        with transaction():
            db.session.execute(update(Commission).values(due_at=utcnow() - timedelta(seconds=1)))
        d_alice = distributors.distributor_of(merchant.id, alice.id).id
        d_bob = distributors.distributor_of(merchant.id, bob.id).id
        return {"merchant_id": merchant.id, "alice": d_alice, "bob": d_bob, "bob_member": bob.id}

    return _in_app(app, build)


def _reconciles(app: Flask) -> None:
    checked, problems = _in_app(app, ledger.reconcile)
    assert problems == [] and checked >= 1


def test_two_settlement_workers_at_once_settle_each_commission_exactly_once(app):
    shop = _program_with_chain(app, orders=10, lines=3)
    due = _in_app(app, lambda: db.session.execute(select(func.count()).select_from(Commission)).scalar_one())
    assert due == 60

    settled = race(2, lambda i: _in_app(app, lambda: jobs.settle(batch=7)))

    assert sum(settled) == 60
    assert all(n > 0 for n in settled), settled  # both took a share: SKIP LOCKED, not waiting

    def read() -> tuple[Any, ...]:
        statuses = db.session.execute(select(Commission.status, func.count()).group_by(Commission.status)).all()
        credited = db.session.execute(
            select(func.sum(LedgerEntry.d_available)).where(LedgerEntry.kind == "commission_settled")
        ).scalar_one()
        owed = db.session.execute(select(func.sum(Commission.amount))).scalar_one()
        available = db.session.execute(select(func.sum(Distributor.available))).scalar_one()
        return dict(statuses), credited, owed, available

    statuses, credited, owed, available = _in_app(app, read)
    assert statuses == {"settled": 60}
    assert credited == owed == available
    assert _in_app(app, lambda: jobs.settle(batch=7)) == 0  # settling again pays nothing
    _reconciles(app)
    assert shop["bob"]


def _fund(app: Flask, distributor_id: int, amount: int) -> None:
    def call() -> None:
        with transaction():
            row = ledger.lock_distributors([distributor_id])[distributor_id]
            ledger.adjust(row, amount, "活动奖励", staff_id=None)

    _in_app(app, call)


def test_concurrent_withdrawals_never_overdraw_one_balance(app):
    shop = _program_with_chain(app)
    _fund(app, shop["bob"], 3500)

    def withdraw(i: int) -> str:
        def call() -> str:
            try:
                with transaction():
                    withdrawals.request_withdrawal(shop["merchant_id"], shop["bob_member"], 1000)
                return "requested"
            except Conflict as refused:
                return refused.code

        return _in_app(app, call)

    outcomes = race(12, withdraw)
    assert outcomes.count("requested") == 3
    assert set(outcomes) == {"requested", "insufficient_balance"}
    bob = _in_app(app, lambda: db.session.get(Distributor, shop["bob"]))
    assert (bob.available, bob.withdrawing) == (500, 3000)
    _reconciles(app)


def test_approve_against_reject_one_decision_wins(app):
    shop = _program_with_chain(app)
    _fund(app, shop["bob"], 5000)

    def ask() -> int:
        with transaction():
            return withdrawals.request_withdrawal(shop["merchant_id"], shop["bob_member"], 2000).id

    withdrawal_id = _in_app(app, ask)

    def decide(i: int) -> str:
        def call() -> str:
            try:
                with transaction():
                    withdrawals.decide(shop["merchant_id"], withdrawal_id, ("approve", "reject")[i % 2], staff_id=None)
                return ("approve", "reject")[i % 2]
            except Conflict as refused:
                return refused.code

        return _in_app(app, call)

    outcomes = race(6, decide)
    winners = [o for o in outcomes if o in ("approve", "reject")]
    assert len(winners) == 1 and outcomes.count("illegal_transition") == 5, outcomes
    status = _in_app(app, lambda: db.session.get(Withdrawal, withdrawal_id).status)
    assert status == {"approve": "approved", "reject": "rejected"}[winners[0]]
    returned = _in_app(
        app,
        lambda: db.session.execute(
            select(func.count()).where(
                LedgerEntry.kind == "withdrawal_returned", LedgerEntry.withdrawal_id == withdrawal_id
            )
        ).scalar_one(),
    )
    assert returned == (1 if winners[0] == "reject" else 0)
    _reconciles(app)


def test_refunds_racing_settlement_reverse_or_claw_back_each_commission_once(app):
    _program_with_chain(app, orders=6, lines=2)
    order_ids = _in_app(app, lambda: list(db.session.execute(select(Commission.order_id).distinct()).scalars()))

    def refund_all(order_id: int) -> None:
        from shop.orders.models import OrderLine

        with transaction():
            db.session.execute(
                update(OrderLine)
                .where(OrderLine.order_id == order_id)
                .values(refunded_quantity=OrderLine.quantity, refunded_amount=OrderLine.paid_amount)
            )
            from distribution.commissions import recompute

            recompute(order_id)

    def work(i: int) -> Any:
        if i == 0:
            return _in_app(app, lambda: jobs.settle(batch=3))
        return _in_app(app, lambda: refund_all(order_ids[i - 1]))

    race(len(order_ids) + 1, work)

    def read() -> list[tuple[str, int, int]]:
        return [(c.status, c.amount, c.clawed_back) for c in db.session.execute(select(Commission)).scalars()]

    for status, amount, clawed in _in_app(app, read):
        # refunded before settlement: reversed to 0; after: settled and clawed back in full
        assert (status, amount) == ("reversed", 0) or (status == "settled" and clawed == amount)
    _reconciles(app)
    assert _in_app(app, lambda: settlement.settle_batch()).commissions == 0


def test_duplicate_transfer_notifications_at_once_pay_the_withdrawal_once(app):
    from api.worker import run_burst
    from shop.identity.models import Merchant

    shop = _program_with_chain(app)
    _fund(app, shop["bob"], 5000)

    def ask_and_approve() -> int:
        with transaction():
            withdrawal = withdrawals.request_withdrawal(shop["merchant_id"], shop["bob_member"], 3000)
        with transaction():
            withdrawals.decide(shop["merchant_id"], withdrawal.id, "approve", staff_id=None)
        return withdrawal.id

    withdrawal_id = _in_app(app, ask_and_approve)
    _in_app(app, lambda: run_burst(app))  # the payout job: the bill waits for bob's confirmation
    provider = app.extensions["groupshop.payments"]

    def notice() -> tuple[str, dict[str, str], str]:
        withdrawal = db.session.get(Withdrawal, withdrawal_id)
        assert withdrawal.status == "wait_user_confirm"
        provider.confirm_transfer(withdrawal.out_bill_no)
        merchant = db.session.get(Merchant, shop["merchant_id"])
        headers, body = provider.transfer_notification(merchant, out_bill_no=withdrawal.out_bill_no)
        return merchant.code, headers, body

    code, headers, body = _in_app(app, notice)

    def post(i: int) -> int:
        return (
            app.test_client()
            .post(f"/api/v1/payments/wechatpay/{code}/transfer-notify", data=body, headers=headers)
            .status_code
        )

    assert race(8, post) == [204] * 8

    def read() -> tuple[str, int, int]:
        paid = db.session.execute(
            select(func.count()).where(
                LedgerEntry.kind == "withdrawal_paid", LedgerEntry.withdrawal_id == withdrawal_id
            )
        ).scalar_one()
        return (
            db.session.get(Withdrawal, withdrawal_id).status,
            paid,
            db.session.get(Distributor, shop["bob"]).withdrawn,
        )

    assert _in_app(app, read) == ("paid", 1, 3000)
    _reconciles(app)
