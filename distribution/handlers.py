"""What distribution does when shop's events say a member or an order changed (subscribed by
`distribution.install`; each runs inside the transaction that made the change, in a savepoint of
its own). Only goods orders earn commissions."""

from __future__ import annotations

from distribution.binding import on_member_invited
from distribution.commissions import on_group_succeeded, on_order_completed, on_order_paid, on_order_refunded

__all__ = ["on_group_succeeded", "on_member_invited", "on_order_completed", "on_order_paid", "on_order_refunded"]
