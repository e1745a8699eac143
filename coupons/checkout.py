"""The `coupons` pricing adjuster: which wallet coupons an order uses and what each takes off.

Asked by shop's pricing at every quote and placement (`shop.checkout.pricing`), it reads the
member's usable coupons with their templates in ONE statement, whatever the wallet holds (the
sub-categories a category scope takes come in the same statement), and answers:

- the adjustments: each coupon used, as a goods adjustment over the lines it takes (named by
  position, so an offer line and a normal line of one SKU are told apart) or a shipping one,
  with the coupon's id as `reference` (the `order_placed` handler locks those coupons);
- `options.coupons`: every usable wallet coupon (and any the member named), whether it applies
  to this order on its own, whether it is selected, what it takes off, or why not.

The member's selection (`selections["coupons"] = {"ids": [...]}`; the API's `coupons: [ids]`)
decides: absent, the best combination (`coupons.rules.best_combination`); `[]`, none; ids,
exactly those, in that order, or a refusal: 422 for a coupon not in the member's wallet or two
that do not stack, 409 `coupon_not_applicable` (with the reason) or `coupon_unavailable` (locked
by another order, or used).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text

from coupons.rules import (
    FREE_SHIPPING,
    Candidate,
    Terms,
    Use,
    apply_in_turn,
    best_combination,
    each_alone,
    terms_of,
)
from shop.checkout.pricing import AdjusterResult, Adjustment, PricingContext
from shop.core.db import db
from shop.core.errors import Conflict, InvalidInput

NAME = "coupons"
MAX_SELECTED = 10

# The member's coupons that could be used (available) and the ones they named, with their terms.
_WALLET = text(
    """
    SELECT c.id, c.status, c.valid_from, c.valid_until,
           t.id AS template_id, t.name, t.kind, t.threshold, t.amount, t.rate_bp, t.cap, t.gift_sku_id,
           t.scope, t.scope_ids, t.excluded_product_ids, t.offer_lines, t.stackable,
           CASE WHEN t.scope = 'categories' THEN ARRAY(
               SELECT k.id FROM categories k
               WHERE k.merchant_id = t.merchant_id
                 AND k.parent_id IN (SELECT (jsonb_array_elements_text(t.scope_ids))::bigint)
           ) END AS children
    FROM coupons c JOIN coupon_templates t ON t.id = c.template_id
    WHERE c.merchant_id = :merchant AND c.member_id = :member
      AND (c.status = 'available' OR c.id = ANY(:named))
    ORDER BY c.valid_until, c.id
    """
)


def _selected_ids(selection: Mapping[str, Any] | None) -> list[int] | None:
    if selection is None:
        return None
    ids = selection.get("ids") if isinstance(selection, Mapping) else None
    extra = sorted(set(selection) - {"ids"}) if isinstance(selection, Mapping) else []
    if (
        extra
        or not isinstance(ids, list)
        or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63 for i in ids)
    ):
        raise InvalidInput(
            "coupons must be a list of your coupon ids",
            code="validation_error",
            details={"fields": {"coupons": ["a list of coupon ids"]}},
        )
    if len(ids) > MAX_SELECTED:
        raise InvalidInput(
            f"at most {MAX_SELECTED} coupons per order",
            code="validation_error",
            details={"fields": {"coupons": [f"at most {MAX_SELECTED} coupons"]}},
        )
    if len(set(ids)) != len(ids):
        raise InvalidInput(
            "a coupon named twice", code="validation_error", details={"fields": {"coupons": ["a coupon named twice"]}}
        )
    return ids


def _terms(row: Any) -> Terms:
    return terms_of(row, wider_scope=row.children if row.scope == "categories" and row.children else ())


def _unusable(row: Any, now: datetime) -> str | None:
    """Why a wallet coupon cannot be used at all now, whatever the order."""
    if row.status != "available":
        return row.status  # locked (in another unpaid order), used or expired
    if row.valid_until <= now:
        return "expired"
    if row.valid_from > now:
        return "not_started"
    return None


class CouponAdjuster:
    name = NAME
    order = 100
    # Nothing to adjust for a member with no available coupon that is still valid (pricing's
    # idle_condition): the one-round-trip flash placement then skips the wallet's read.
    idle_sql = (
        "NOT EXISTS (SELECT FROM coupons c WHERE c.merchant_id = :p_merchant AND c.member_id = :p_member"
        " AND c.status = 'available' AND c.valid_until > :p_now)"
    )

    def adjust(self, context: PricingContext) -> AdjusterResult:
        named = _selected_ids(context.selection(NAME))
        rows = db.session.execute(
            _WALLET, {"merchant": context.merchant_id, "member": context.member_id, "named": named or []}
        ).all()
        by_id = {row.id: row for row in rows}
        now = context.now
        candidates = {
            row.id: Candidate(row.id, row.template_id, _terms(row), row.stackable, row.valid_until)
            for row in rows
            if _unusable(row, now) is None
        }
        lines = context.lines
        fee_for = context.fee_for
        outcomes = each_alone(list(candidates.values()), lines, fee_for=fee_for)
        alone = {coupon_id: outcome.uses[0].evaluation for coupon_id, outcome in outcomes.items()}
        if named is None:
            uses = best_combination(list(candidates.values()), lines, fee_for=fee_for, alone=outcomes)
        else:
            uses = self._chosen(named, by_id, candidates, context)
        chosen = {use.coupon_id: use for use in uses}
        adjustments = [_adjustment(use, by_id[use.coupon_id]) for use in uses]
        options = [_option(row, alone.get(row.id), chosen.get(row.id), now) for row in rows]
        return AdjusterResult(adjustments=adjustments, options=options)

    @staticmethod
    def _chosen(
        named: list[int], by_id: Mapping[int, Any], candidates: Mapping[int, Candidate], context: PricingContext
    ) -> list[Use]:
        unknown = {str(position): ["not in your wallet"] for position, i in enumerate(named) if i not in by_id}
        if unknown:
            raise InvalidInput(
                "that coupon is not in your wallet", code="coupon_not_found", details={"fields": {"coupons": unknown}}
            )
        for coupon_id in named:
            reason = _unusable(by_id[coupon_id], context.now)
            if reason in ("locked", "used"):
                raise Conflict(
                    "that coupon is no longer available",
                    code="coupon_unavailable",
                    details={"coupon_id": coupon_id, "reason": reason},
                )
            if reason is not None:
                raise Conflict(
                    "that coupon cannot be used on this order",
                    code="coupon_not_applicable",
                    details={"coupon_id": coupon_id, "reason": reason},
                )
        if len(named) > 1 and not all(candidates[i].stackable for i in named):
            alone = [i for i in named if not candidates[i].stackable]
            raise InvalidInput(
                "one coupon per order unless every coupon chosen stacks",
                code="coupons_do_not_stack",
                details={"fields": {"coupons": [f"does not stack with others: {', '.join(map(str, alone))}"]}},
            )
        outcome = apply_in_turn([candidates[i] for i in named], context.lines, fee_for=context.fee_for)
        for use in outcome.uses:
            if not use.evaluation.applicable:
                details: dict[str, Any] = {"coupon_id": use.coupon_id, "reason": use.evaluation.reason}
                if use.evaluation.short_by is not None:
                    details["short_by"] = use.evaluation.short_by
                raise Conflict(
                    "that coupon cannot be used on this order", code="coupon_not_applicable", details=details
                )
        # Applied by shop in the member's order: goods coupons in turn, then the shipping ones.
        return [u for u in outcome.uses if not _shipping(candidates[u.coupon_id])] + [
            u for u in outcome.uses if _shipping(candidates[u.coupon_id])
        ]


def _shipping(candidate: Candidate) -> bool:
    return candidate.terms.kind == FREE_SHIPPING


def _adjustment(use: Use, row: Any) -> Adjustment:
    evaluation = use.evaluation
    return Adjustment(
        source=NAME,
        kind=evaluation.kind,
        amount=evaluation.discount,
        reference=str(use.coupon_id),
        description=row.name,
        sku_ids=evaluation.sku_ids if evaluation.kind == "goods" else None,
        lines=evaluation.lines if evaluation.kind == "goods" else None,
    )


def _option(row: Any, alone: Any, used: Use | None, now: datetime) -> dict[str, Any]:
    reason = _unusable(row, now)
    option: dict[str, Any] = {
        "id": row.id,
        "template_id": row.template_id,
        "name": row.name,
        "kind": row.kind,
        "threshold": row.threshold,
        "stackable": row.stackable,
        "valid_from": row.valid_from.isoformat(),
        "valid_until": row.valid_until.isoformat(),
        "selected": used is not None,
        "applicable": reason is None and alone is not None and alone.applicable,
        "discount": 0,
        "reason": reason,
        "short_by": None,
    }
    if used is not None:
        option["discount"] = used.evaluation.discount
    elif alone is not None and alone.applicable:
        option["discount"] = alone.discount
    if reason is None and alone is not None and not alone.applicable:
        option["reason"], option["short_by"] = alone.reason, alone.short_by
    return option


def coupon_ids(adjustments: Sequence[Any]) -> list[int]:
    """The coupon ids among an order's adjustments (AdjustmentInfo or Adjustment)."""
    return sorted({int(a.reference) for a in adjustments if a.source == NAME and a.reference.isdigit()})
