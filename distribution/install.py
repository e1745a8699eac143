"""`install()` of distribution (shop/install.py describes the pattern): the tables' meanings,
the order and member event handlers, and the settlement job and sweep."""

from __future__ import annotations

from distribution import handlers, program
from distribution.models import Program
from shop.core import integrity
from shop.core.db import db
from shop.core.errors import Conflict, InvalidInput
from shop.core.events import GroupSucceeded, MemberInvited, OrderCompleted, OrderPaid, OrderRefunded, bus
from shop.demo import register_demo

# What the distribution tables' keys mean when a race takes one (shop.core.integrity).
MEANINGS = {
    "pk_distribution_programs": integrity.Meaning(Conflict, "conflict", "the program was changed meanwhile; retry"),
    "uq_distributors_member": integrity.Meaning(Conflict, "conflict", "the member joined meanwhile; retry"),
    "pk_distribution_bindings": integrity.Meaning(Conflict, "conflict", "the member was bound meanwhile; retry"),
    "uq_commissions_line_level": integrity.Meaning(Conflict, "conflict", "the commission was recorded meanwhile"),
    "uq_withdrawals_out_bill_no": integrity.Meaning(Conflict, "conflict", "could not number the withdrawal; retry"),
    "uq_distribution_tiers_rank": integrity.Meaning(Conflict, "tier_rank_taken", "another tier has that rank", "rank"),
    "uq_distribution_overrides_product": integrity.Meaning(
        Conflict, "override_exists", "that product's override at that level was set at the same time"
    ),
    "uq_distribution_overrides_sku": integrity.Meaning(
        Conflict, "override_exists", "that SKU's override at that level was set at the same time"
    ),
}

# A tier deleted while a distributor is put in it: as if it had never existed.
MISSING = {
    "fk_distributors_tier_id_distribution_tiers": integrity.Meaning(
        InvalidInput, "validation_error", "not found", "tier_id"
    ),
}

SUBSCRIPTIONS = (
    (MemberInvited, handlers.on_member_invited),
    (OrderPaid, handlers.on_order_paid),
    (OrderRefunded, handlers.on_order_refunded),
    (OrderCompleted, handlers.on_order_completed),
    (GroupSucceeded, handlers.on_group_succeeded),
)


def load_demo(merchant_id: int) -> bool:
    """The demo shop's program: on, two levels (10% and 5%), open to every member who applies,
    first invite wins; a gold tier for distributors whose team bought 1,000 yuan (once)."""
    if db.session.get(Program, merchant_id) is not None:
        return False
    program.update_program(
        merchant_id, enabled=True, levels=2, rates_bp=[1000, 500], join_rule="open", min_withdrawal=100
    )
    program.create_tier(merchant_id, name="金牌分销员", rank=1, rates_bp=[1500, 500], min_team_sales=100_000)
    return True


def install() -> None:
    """Safe to call twice: every registration is idempotent."""
    from distribution import jobs  # noqa: F401  (registers the settlement job and its sweep)

    integrity.register(duplicate=MEANINGS, missing=MISSING)
    for event, handler in SUBSCRIPTIONS:
        bus.subscribe(event, handler)
    register_demo(load_demo)
