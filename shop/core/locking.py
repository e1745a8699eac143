"""Row locks: one order, the same in every path, so that two transactions never wait on each other.

THE ORDER. A transaction takes the row locks it needs in this order, skipping the kinds it does not
need, and never takes an earlier kind after a later one:

    1. the order                 (`lock_order`; one order per transaction)
    2. the order's own rows: its refund (`lock_refund`), its lines, a payment's transaction id
       (an insert into a unique index waits on, and makes others wait on, the same key)
    3. offers (shop.offers), in this order: a member's join of a group (a transaction-scoped
       advisory lock, `xact_lock`); the groups of a group buy (a payment's seat, closing one,
       the offer's end moving their time); the offer (`give_back_units`, a staff change,
       closing it); the member's `offer_buyers` row; the offer's units (taken with SKIP
       LOCKED: a placement waits on another's units only when the free ones it sees run short)
    4. SKUs, in id order         (`move_stock` through `reserve_stock` / `release_stock`, which
                                  sort; `lock_product` for a staff edit)
    5. products, in id order     (`record_sales`, which sorts; `lock_product`, after the SKUs)

Rows nobody else can see yet (an order being placed, a product being created) lock nothing
anyone waits for, and a lock on a parent taken only by a foreign-key check does not count:
explicit locks here are FOR NO KEY UPDATE, the lock an UPDATE of ordinary columns takes, which
leaves the FOR KEY SHARE of foreign-key checks alone (an order line or a stock movement being
inserted never waits for its SKU's lock, and never makes anyone wait for it).

No network call is made holding any of these (`shop.core.db.forbid_open_transaction`): commit, call,
then take the locks again and re-check (as `start_payment`, `submit_refund`, the expiry and close
jobs and the login do).

EVERY PATH that locks rows, and what it takes:
- placing an order (`orders.place_order`): its idempotency key (unique index), its new rows,
  SKUs (reserve: the last write before the cart, so a hot SKU's lock is held briefly), the
  member's cart rows (from the cart); a free order is then paid at once: its payment,
  products (`record_sales`). Offer resolvers and pricing adjusters run before the SKUs are
  reserved (pricing comes first): at placement they may lock or guard-update their own rows
  (an offer's quota, a coupon), which must come after the idempotency key and before SKUs in
  their package's documented order; at a quote they lock nothing.
- offers: a placement at an offer takes (through orders' offer-keeper door, before the SKUs of
  its other lines) the member's `offer_buyers` row (a guarded upsert), then free units (SKIP
  LOCKED); opening or joining a group adds its `group_orders` row, new (a join's pricing first
  takes the member's advisory lock for that group, after the key). Cancelling, expiring or
  restocking by a refund: order, the group of an initiator's order (cancelled if it never
  opened), the offer (`give_back_units`), the member's row, the units, then the SKU when the
  offer is closed. A payment of a group order: order, the group (the seat's guarded UPDATE;
  `on_order_paid` takes it again for the group's success), the offer for an initiator's (is it
  still running?). Closing a group (job or sweep): the group alone; each of its orders is then
  settled by a job of its own (order, then as cancelling or `issue_refund`). Staff ending an
  offer or moving its end: its forming groups (their time), then the offer, its units, the SKU;
  other staff changes and closing an offer (sweep: SKIP LOCKED over due offers): the offer, its
  units, the SKU.
- placing a non-goods order (`orders.special.place_special_order`): its idempotency key, new rows,
  nothing else; completing one (`complete_special_order`): the order. Paying, expiring and refunding
  one take the paths below, without SKUs or products.
- a payment, by notification or by asking the provider (`payments.service._apply_payment`):
  order, its payment's transaction id, products (`record_sales` in `mark_paid`); a late payment
  adds a refund row. `start_payment`'s second transaction: order.
- cancelling or expiring an unpaid order (`orders.cancel_order`): order, SKUs (`release_stock`).
- refunds: asking (`request_refund`) and issuing by staff or the system (`issue_refund`): order,
  then the check for an open refund of the order and the new refund row (under the order's lock,
  so two of them racing leave one open refund); deciding (`decide_refund`): order,
  refund; submitting (`submit_refund`, both transactions): order, refund; settling (`_settle`,
  from the notification or the submission's answer): order, refund, order lines, SKUs
  (`release_stock`, when restocking), then products (`record_sales`).
- fulfilment (ship, ready, receive, pickup, auto-confirm, finalize): order only.
- staff catalog edits: `update_product` and `set_shelf` take the product's SKUs then the product
  (`lock_product`) before changing either; `adjust_stock`: one SKU; `create_product`: new rows.
- the sweeps take no lock themselves: each due item runs its job (above) in its own transaction.
- the login (`members.login_with_wx_code`): its member row (unique index on the openid), nothing
  else, but for an invite (below);
- invites (`invites.open_invite`, from the login or `POST /invites/{code}/open`): the member's own
  row (FOR NO KEY UPDATE; a returning login holds it already), so one member's opens are counted
  one at a time; then, only to bind a member after their creation, the merchant's invite-binding
  advisory lock (`pg_advisory_xact_lock`, transaction-scoped), then nothing else (the chain walk
  that refuses a cycle only reads). The inviter's row is never locked.
- the cart: the member's cart rows, never a SKU; a staff change (`lock_staff`): the merchant's
  owners and the two accounts concerned, in id order, nothing else; merchant settings
  (`lock_settings`): their own row, nothing else; a payment account (`lock_payment_account`),
  then the platform keys it changes (changes to one merchant's keys happen one at a time).
- categories (`lock_category`): editing or deleting one locks it FOR UPDATE, nothing else. That
  stronger lock (the one a DELETE takes) does wait for, and block, the foreign-key checks of a
  product or sub-category being filed under it, so a delete sees every child committed before it.
- event subscribers (other packages) run inside these transactions, after the shop's locks: they
  lock only their own rows, after everything above, in their own documented order. A handler of
  any event but OrderPlaced runs in a SAVEPOINT of its own (shop.core.events): when it fails with
  a DomainError, rolling back to the savepoint also releases the locks it took, never the shop's.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Select, func, select

from shop.core.db import db


def locked(query: Select, *, key_share: bool = True) -> Select:
    # key_share: FOR NO KEY UPDATE (see above), else FOR UPDATE. populate_existing: a row this
    # session read before is re-read under the lock, so what another transaction committed
    # meanwhile is seen.
    return query.with_for_update(key_share=key_share).execution_options(populate_existing=True)


def xact_lock(name: str) -> None:
    """A transaction-scoped advisory lock named `name` (hashed to PostgreSQL's 64-bit key): for
    serializing what no row stands for yet (e.g. one member's joins of one group)."""
    key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
    db.session.execute(select(func.pg_advisory_xact_lock(key)))
