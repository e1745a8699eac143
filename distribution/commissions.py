"""The commission engine: recording commissions when an order is paid, lowering them when it is
refunded, setting when they fall due when it completes.

Recording (`record`, from `order_paid`, in the payment's transaction): for each line of a goods
order, the distributors above the buyer (the buyer first when self-purchase is on and they are an
active distributor), up to the program's levels, each by `distribution.rules.rule_for`, on the
line's `paid_amount` (after discounts, without shipping), rounded down per line. One statement
inserts the commissions (`ON CONFLICT (line_id, level) DO NOTHING`: a replayed payment records
nothing) and their `commission_pending` ledger entries. No distributor row is locked: the pending
balance is a sum of entries, so a payment never waits for a busy distributor.

Refunds (`on_refund`): each commission of a refunded line is recomputed by its own rule on what
is left of the line (paid less refunded, units less refunded). Before settlement the difference
is reversed (`commission_reversed`; all of it: the commission is `reversed`); after settlement
(a staff refund of a completed order) it is clawed back from the available balance
(`commission_clawback`), which may go below zero and is netted against later settlements.

Locks: the order's commission rows (id order), then the distributors' rows (id order). Settlement
takes the same two kinds in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Integer, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from distribution import binding, distributors
from distribution.ledger import lock_distributors, post
from distribution.models import INITIATOR_LEVEL, Commission, Distributor, LedgerEntry, Program, Tier
from distribution.program import get_program, overrides_for, rates_of
from distribution.rules import Rule, rule_for
from distribution.states import COMMISSION_MACHINE, CommissionAction, CommissionStatus
from shop.core.db import db, utcnow
from shop.core.events import GroupSucceeded, OrderCompleted, OrderLineInfo, OrderPaid, OrderRefunded
from shop.core.locking import locked
from shop.orders.models import Order, OrderLine

GOODS = "goods"


def on_order_paid(event: OrderPaid) -> None:
    if event.kind != GOODS:
        return
    program = get_program(event.merchant_id)
    if not program.enabled:
        return
    binding.touch(event.member_id, utcnow())
    distributors.admit_by_spending(event.merchant_id, event.member_id, program)
    record(event.merchant_id, event.order_id, event.member_id, event.lines, program)


def on_group_succeeded(event: GroupSucceeded) -> None:
    """The initiator (开团人) of a group buy that succeeded (full, or completed short) earns the
    offer's `leader_commission_bp` on what the group's other members paid, per line, rounded down,
    recorded at level 0 like any commission (pending until each order completes, lowered by its
    refunds); only as an active distributor of a program that is on. A replay records nothing."""
    if not event.leader_commission_bp:
        return
    program = get_program(event.merchant_id)
    if not program.enabled:
        return
    initiator = distributors.distributor_of(event.merchant_id, event.leader_id)
    if initiator is None or initiator.status != "active":
        return
    rule = Rule(rate_bp=event.leader_commission_bp, fixed_amount=None)
    rows = db.session.execute(
        select(Order.id, Order.member_id, OrderLine)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(Order.id.in_(event.order_ids), Order.member_id != event.leader_id)
        .order_by(Order.id, OrderLine.id)
    ).all()
    by_order: dict[tuple[int, int], list[dict[str, object]]] = {}
    for order_id, buyer_id, line in rows:
        quantity = line.quantity - line.refunded_quantity
        base = line.paid_amount - line.refunded_amount
        amount = rule.amount(base, quantity) if quantity > 0 and base > 0 else 0
        if amount <= 0:
            continue
        by_order.setdefault((order_id, buyer_id), []).append(
            {
                "distributor_id": initiator.id,
                "line_id": line.id,
                "level": INITIATOR_LEVEL,
                "product_id": line.product_id,
                "sku_id": line.sku_id,
                "quantity": quantity,
                "base_amount": base,
                "rate_bp": rule.rate_bp,
                "fixed_amount": None,
                "amount": amount,
            }
        )
    for (order_id, buyer_id), values in by_order.items():
        _insert(event.merchant_id, order_id, buyer_id, values)


def beneficiaries(merchant_id: int, buyer_id: int, levels: int, self_purchase: bool) -> list[int]:
    """The member ids earning at level 1, 2, ... on the buyer's order (inactive ones included:
    the caller skips them, their level stays theirs)."""
    if self_purchase:
        own = distributors.distributor_of(merchant_id, buyer_id)
        if own is not None and own.status == "active":
            return [buyer_id, *binding.upline(merchant_id, buyer_id, levels - 1)]
    return binding.upline(merchant_id, buyer_id, levels)


def record(
    merchant_id: int, order_id: int, buyer_id: int, lines: Iterable[OrderLineInfo], program: Program | None = None
) -> int:
    """Record the order's commissions (once: a replay records nothing); how many were new."""
    program = program or get_program(merchant_id)
    if not program.enabled:
        return 0
    chain = beneficiaries(merchant_id, buyer_id, program.levels, program.self_purchase)
    if not chain:
        return 0
    rows = db.session.execute(
        select(Distributor.id, Distributor.member_id, Distributor.status, Tier.level1_rate_bp, Tier.level2_rate_bp)
        .outerjoin(Tier, Tier.id == Distributor.tier_id)
        .where(Distributor.member_id.in_(chain), Distributor.merchant_id == merchant_id)
    ).all()
    earners = {row.member_id: row for row in rows if row.status == "active"}
    lines = [line for line in lines if line.paid_amount > 0 and line.quantity > 0]
    overrides = overrides_for(merchant_id, [line.product_id for line in lines if line.product_id is not None])
    values = []
    given: dict[int, int] = {}  # per line, what the levels before took: together never above what it paid
    for level, member_id in enumerate(chain, start=1):
        earner = earners.get(member_id)
        if earner is None:
            continue
        tier_rates = (earner.level1_rate_bp, earner.level2_rate_bp)
        for line in lines:
            rule = rule_for(
                level,
                line.product_id,
                line.sku_id,
                program_rates=rates_of(program),
                tier_rates=tier_rates,
                overrides=overrides,
            )
            amount = rule.amount(line.paid_amount, line.quantity) if rule is not None else 0
            amount = min(amount, line.paid_amount - given.get(line.line_id, 0))
            given[line.line_id] = given.get(line.line_id, 0) + max(amount, 0)
            if amount <= 0:
                continue
            values.append(
                {
                    "merchant_id": merchant_id,
                    "distributor_id": earner.id,
                    "order_id": order_id,
                    "line_id": line.line_id,
                    "buyer_id": buyer_id,
                    "level": level,
                    "product_id": line.product_id,
                    "sku_id": line.sku_id,
                    "quantity": line.quantity,
                    "base_amount": line.paid_amount,
                    "rate_bp": rule.rate_bp,
                    "fixed_amount": rule.fixed_amount,
                    "original_amount": amount,
                    "amount": amount,
                }
            )
    return _insert(merchant_id, order_id, buyer_id, values)


def _insert(merchant_id: int, order_id: int, buyer_id: int, values: list[dict[str, object]]) -> int:
    """Insert an order's commissions and their pending entries (once per line and level)."""
    if not values:
        return 0
    columns = {name: [row[name] for row in values] for name in _RECORD_COLUMNS}
    made = db.session.execute(
        _RECORD, {"merchant_id": merchant_id, "order_id": order_id, "buyer_id": buyer_id, **columns}
    )
    return len(made.all())


# One statement whatever the number of lines: the commissions as arrays (so it is compiled once,
# not per shape), inserted once per (line, level), and a `commission_pending` entry for each new one.
_RECORD_COLUMNS = (
    "distributor_id",
    "line_id",
    "level",
    "product_id",
    "sku_id",
    "quantity",
    "base_amount",
    "rate_bp",
    "fixed_amount",
    "amount",
)
_RECORD = text(
    """
    WITH made AS (
        INSERT INTO commissions
            (merchant_id, order_id, buyer_id, distributor_id, line_id, level, product_id, sku_id, quantity,
             base_amount, rate_bp, fixed_amount, original_amount, amount, clawed_back, status, created_at)
        SELECT :merchant_id, :order_id, :buyer_id, t.distributor_id, t.line_id, t.level, t.product_id, t.sku_id,
               t.quantity, t.base_amount, t.rate_bp, t.fixed_amount, t.amount, t.amount, 0, 'pending', now()
        FROM unnest(:distributor_id, :line_id, :level, :product_id, :sku_id, :quantity, :base_amount, :rate_bp,
                    :fixed_amount, :amount)
             AS t(distributor_id, line_id, level, product_id, sku_id, quantity, base_amount, rate_bp,
                  fixed_amount, amount)
        ON CONFLICT ON CONSTRAINT uq_commissions_line_level DO NOTHING
        RETURNING id, distributor_id, amount
    )
    INSERT INTO distribution_ledger
        (merchant_id, distributor_id, kind, d_pending, d_available, d_withdrawing, d_withdrawn, commission_id,
         order_id, commissions, reason, created_at)
    SELECT :merchant_id, made.distributor_id, 'commission_pending', made.amount, 0, 0, 0, made.id, :order_id, 0, '',
           now()
    FROM made
    RETURNING id
    """
).bindparams(
    *(
        bindparam(name, type_=ARRAY(Integer if name in ("level", "quantity", "rate_bp") else BigInteger))
        for name in _RECORD_COLUMNS
    )
)


def _rule(commission: Commission) -> Rule:
    return Rule(rate_bp=commission.rate_bp, fixed_amount=commission.fixed_amount)


def lock_commissions(order_id: int) -> list[Commission]:
    return list(
        db.session.execute(
            locked(select(Commission).where(Commission.order_id == order_id).order_by(Commission.id))
        ).scalars()
    )


def recompute(order_id: int, line_ids: set[int] | None = None) -> int:
    """Bring the order's commissions (of these lines, or all) in line with what is left of each
    line; answers the fen taken back. Idempotent: a second call finds nothing to change."""
    commissions = [c for c in lock_commissions(order_id) if line_ids is None or c.line_id in line_ids]
    if not commissions:
        return 0
    lines = {
        row.id: row
        for row in db.session.execute(
            select(
                OrderLine.id,
                OrderLine.quantity,
                OrderLine.paid_amount,
                OrderLine.refunded_quantity,
                OrderLine.refunded_amount,
            ).where(OrderLine.id.in_({c.line_id for c in commissions}))
        )
    }
    taken = 0
    clawbacks: list[tuple[Commission, int, int]] = []  # (commission, fen back, base it lost)
    for commission in commissions:
        line = lines[commission.line_id]
        base = max(line.paid_amount - line.refunded_amount, 0)
        quantity = max(line.quantity - line.refunded_quantity, 0)
        worth = min(_rule(commission).amount(base, quantity), commission.original_amount)
        if commission.status == CommissionStatus.PENDING:
            less = commission.amount - worth
            commission.base_amount, commission.quantity = base, quantity
            if less <= 0:
                continue
            db.session.add(
                LedgerEntry(
                    merchant_id=commission.merchant_id,
                    distributor_id=commission.distributor_id,
                    kind="commission_reversed",
                    d_pending=-less,
                    commission_id=commission.id,
                    order_id=order_id,
                )
            )
            commission.amount = worth
            if worth == 0:
                commission.status = COMMISSION_MACHINE.step(commission.status, CommissionAction.REVERSE).to
            taken += less
        elif commission.status == CommissionStatus.SETTLED:
            less = commission.amount - commission.clawed_back - worth
            lost = commission.base_amount - base
            commission.base_amount, commission.quantity = base, quantity
            if less > 0 or lost > 0:
                clawbacks.append((commission, max(less, 0), max(lost, 0)))
    if clawbacks:
        locked_rows = lock_distributors(c.distributor_id for c, _, _ in clawbacks)
        for commission, less, lost in clawbacks:
            distributor = locked_rows[commission.distributor_id]
            if commission.buyer_id != distributor.member_id and commission.level != INITIATOR_LEVEL:
                distributor.team_sales -= lost  # the team's settled sales, net of this refund
            if less == 0:
                continue
            commission.clawed_back += less
            post(
                distributor,
                "commission_clawback",
                available=-less,
                commission_id=commission.id,
                order_id=order_id,
                reason="refund after settlement",
            )
            taken += less
    db.session.flush()
    return taken


def on_order_refunded(event: OrderRefunded) -> None:
    if event.kind != GOODS:
        return
    recompute(event.order_id, {line.line_id for line in event.lines})


def on_order_completed(event: OrderCompleted) -> None:
    """The order is final: its commissions match what stayed sold, and fall due after the freeze."""
    if event.kind != GOODS:
        return
    recompute(event.order_id)
    freeze = get_program(event.merchant_id).freeze_days
    due = utcnow() + timedelta(days=freeze)
    db.session.execute(
        update(Commission)
        .where(Commission.order_id == event.order_id, Commission.status == "pending", Commission.due_at.is_(None))
        .values(due_at=due)
        .execution_options(synchronize_session=False)
    )


def due_count(now: datetime | None = None) -> int:
    """How many pending commissions are due for settlement."""
    return db.session.execute(
        select(func.count()).where(Commission.status == "pending", Commission.due_at <= (now or utcnow()))
    ).scalar_one()
