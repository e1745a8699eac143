"""Background work of offers: closing groups whose time is up and settling their orders;
closing the offers whose window has ended (their free units go back to their SKUs); clearing
sold-out marks that a lost message left on offers with units."""

from __future__ import annotations

from shop.core.db import transaction
from shop.core.runner import each_due, job, register_sweep
from shop.offers import gate, group_buys, stock


@job(group_buys.CLOSE_GROUP_JOB)
def close_group(group_id: int) -> str | None:
    with transaction():
        return group_buys.close_group(group_id)


@job(group_buys.SETTLE_GROUP_ORDER_JOB)
def settle_group_order(order_id: int) -> str:
    with transaction():
        return group_buys.settle_group_order(order_id)


def sweep_groups() -> int:
    """Groups whose time is up (a close job lost), then orders of closed groups not settled."""
    return each_due(group_buys.due_groups(), close_group) + each_due(
        group_buys.unsettled_group_orders(), settle_group_order
    )


def sweep_ended_offers() -> int:
    """Close the offers that are over, a batch per transaction, until none is left; then give
    back units a placement in flight left free on an offer just closed."""
    closed = 0
    while True:
        with transaction():
            batch = stock.close_ended()
        closed += batch
        if batch == 0:
            break
    with transaction():
        stock.return_stranded()
    return closed


def sweep_gates() -> int:
    """Offers running with free units must not read as sold out (shop.offers.gate)."""
    with transaction():
        running = stock.running_with_free_units()
    return gate.clear_if_units_free(running)


register_sweep(sweep_ended_offers, 30)
register_sweep(sweep_gates, 10)
register_sweep(sweep_groups, 30)
