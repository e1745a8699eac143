"""Constraint violations as domain errors, in one place.

Services check what they can before writing (a taken username, a category still in use), but two
requests can pass the same check at once; the database's constraints then refuse the loser. This
module says what each named constraint means to the caller, so that loser gets the same 409, 404
or 422 a sequential request would have got, never a 500. `transaction()` translates every
`IntegrityError` (and an ORM update or delete that found its row gone) through `translate`.

A foreign key means one of two things: the row it points at is missing (an insert or update of
the referencing row) or the row is still referenced (a delete of the referenced row). A unique or
foreign key not named here still becomes a 4xx by its kind (`_GENERIC`), and is logged so that it
gets a name; a test holds every unique constraint of the schema to an entry in `DUPLICATE`. A
feature package names its own constraints with `register` from its install().

Other violations (NOT NULL, CHECK) are not races but bugs: what a request may write is validated
before, and counters are guarded in SQL. They stay errors (a 500 that monitoring sees), unless a
CHECK is named in `CHECKS` because a request can meet it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from shop.core.errors import Conflict, DomainError, InvalidInput, NotFound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Meaning:
    """What a violated constraint tells the caller: the error, its code and message, the field at fault."""

    error: type[DomainError]
    code: str
    message: str
    field: str | None = None

    def build(self) -> DomainError:
        details = {"fields": {self.field: [self.message]}} if self.field else None
        return self.error(self.message, code=self.code, details=details)


# A second row with the same key.
DUPLICATE: dict[str, Meaning] = {
    "uq_staff_merchant_id_username": Meaning(Conflict, "username_taken", "that username is taken", "username"),
    "uq_merchants_code": Meaning(Conflict, "merchant_code_taken", "that merchant code is taken", "code"),
    "uq_members_merchant_id_openid": Meaning(Conflict, "member_exists", "the member was created meanwhile; retry"),
    "uq_members_merchant_id_invite_code": Meaning(
        Conflict, "conflict", "could not give the member an invite code; retry"
    ),
    "pk_merchant_settings": Meaning(Conflict, "conflict", "the settings were changed meanwhile; retry"),
    "uq_payment_accounts_merchant_id": Meaning(
        Conflict, "conflict", "the payment account was changed meanwhile; retry"
    ),
    "uq_payment_platform_keys_merchant_serial": Meaning(
        Conflict, "platform_key_exists", "a platform key with that serial is stored already", "serial_no"
    ),
    "uq_cart_items_member_id_sku_id": Meaning(Conflict, "conflict", "the cart changed meanwhile; retry"),
    "uq_idempotency_keys_merchant_id_member_id_key": Meaning(
        Conflict, "idempotency_key_in_use", "a request with this Idempotency-Key is in progress; retry"
    ),
    "uq_orders_order_no": Meaning(Conflict, "conflict", "could not number the order; retry"),
    "uq_orders_transaction_id": Meaning(Conflict, "conflict", "that payment is already recorded"),
    # (id, kind): the target of the order lines' (order_id, order_kind) key; id alone is unique, so
    # it cannot be taken twice unless the id is, which the primary key refuses first.
    "uq_orders_id_kind": Meaning(Conflict, "conflict", "could not number the order; retry"),
    "uq_payments_transaction_id": Meaning(Conflict, "conflict", "that payment is already recorded"),
    "uq_refunds_out_refund_no": Meaning(Conflict, "refund_in_progress", "a refund of this order is in progress"),
    # queue_notification inserts with ON CONFLICT DO NOTHING: a duplicate is never an error there.
    "uq_notification_outbox_merchant_id_dedupe_key": Meaning(
        Conflict, "notification_exists", "that notification is queued already"
    ),
    # Offers: a member's count is an upsert; a group's seat is claimed by a guarded UPDATE first.
    "pk_offer_buyers": Meaning(Conflict, "conflict", "the member's count of the offer changed meanwhile; retry"),
    "uq_group_orders_order": Meaning(Conflict, "conflict", "the order is in a group already"),
    "uq_group_orders_seat": Meaning(Conflict, "group_closed", "that seat was taken meanwhile"),
    "uq_group_orders_member_seat": Meaning(Conflict, "already_in_group", "you are in this group already"),
}

# An insert or update points at a row that is not there (deleted meanwhile).
MISSING: dict[str, Meaning] = {
    "fk_products_category_id_categories": Meaning(
        InvalidInput, "category_not_found", "no such category", "category_id"
    ),
    "fk_categories_parent_id_categories": Meaning(InvalidInput, "category_not_found", "no such category", "parent_id"),
}

# A delete of a row that other rows still point at.
IN_USE: dict[str, Meaning] = {
    "fk_products_category_id_categories": Meaning(
        Conflict, "category_in_use", "the category still has sub-categories or products"
    ),
    "fk_categories_parent_id_categories": Meaning(
        Conflict, "category_in_use", "the category still has sub-categories or products"
    ),
}

# A CHECK constraint a request can meet (none today: inputs are validated, counters guarded).
CHECKS: dict[str, Meaning] = {}

_GENERIC = {
    "duplicate": Meaning(Conflict, "conflict", "that already exists"),
    "missing": Meaning(NotFound, "not_found", "something this request refers to no longer exists"),
    "in_use": Meaning(Conflict, "in_use", "it is still in use"),
}
_GONE = Meaning(NotFound, "not_found", "it no longer exists")

# SQLSTATE classes (PostgreSQL error codes, class 23: integrity constraint violation).
_UNIQUE = "23505"
_FOREIGN_KEY = "23503"
_RESTRICT = "23001"


def _kind(sqlstate: str | None, statement: str | None) -> str | None:
    if sqlstate == _UNIQUE:
        return "duplicate"
    if sqlstate == _RESTRICT:
        return "in_use"
    if sqlstate == _FOREIGN_KEY:
        # The verb tells the side (the server's message is in its own language): a DELETE is refused
        # because the row is referenced; an INSERT or UPDATE because what it references is gone.
        words = (statement or "").split(None, 1)
        return "in_use" if words and words[0].upper() == "DELETE" else "missing"
    return None


_TABLES = {"duplicate": DUPLICATE, "missing": MISSING, "in_use": IN_USE}


def register(
    *,
    duplicate: Mapping[str, Meaning] | None = None,
    missing: Mapping[str, Meaning] | None = None,
    in_use: Mapping[str, Meaning] | None = None,
    checks: Mapping[str, Meaning] | None = None,
) -> None:
    """Give a feature package's constraints their meaning (its install() calls this), as shop's
    own are given above. Idempotent; naming a constraint that already means something else is a
    programming error (ValueError), so two packages cannot fight over one name."""
    for table, given in ((DUPLICATE, duplicate), (MISSING, missing), (IN_USE, in_use), (CHECKS, checks)):
        for name, meaning in (given or {}).items():
            known = table.get(name)
            if known is not None and known != meaning:
                raise ValueError(f"constraint {name!r} already means {known.code!r}")
    for table, given in ((DUPLICATE, duplicate), (MISSING, missing), (IN_USE, in_use), (CHECKS, checks)):
        table.update(given or {})


def unregister(*names: str) -> None:
    """Forget the meanings of `names` (tests that register a package's constraints undo it)."""
    for table in (DUPLICATE, MISSING, IN_USE, CHECKS):
        for name in names:
            table.pop(name, None)


def translate(exc: IntegrityError | StaleDataError) -> Exception:
    """The domain error a sequential request would have met instead of this violation; `exc`
    itself when it is a bug rather than a lost race (see the module's docstring)."""
    if isinstance(exc, StaleDataError):  # an ORM UPDATE/DELETE found its row deleted meanwhile
        return _GONE.build()
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    diag = getattr(orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or ""
    kind = _kind(sqlstate, exc.statement)
    if kind is None:
        meaning = CHECKS.get(constraint)
        return meaning.build() if meaning else exc
    meaning = _TABLES[kind].get(constraint)
    if meaning is None:
        log.warning("constraint %r (%s, sqlstate %s) has no meaning in shop.core.integrity", constraint, kind, sqlstate)
        meaning = _GENERIC[kind]
    return meaning.build()
