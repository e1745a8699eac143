"""A merchant's distribution program: its settings, its tiers and its per-product overrides.

The settings are one row per merchant (`distribution_programs`), created on the first change and
locked while it changes; without one the program is off, with the defaults of the table. Levels
are 1 or 2, never more: paying deeper uplines on downline sales is what China's rules against
pyramid selling (禁止传销条例) and WeChat's platform rules forbid; a request for more is refused
with that reason (422 `levels_not_allowed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from distribution.models import MAX_LEVELS, Override, Program, Tier
from distribution.rules import OverrideRule
from shop.catalog.models import Product, Sku
from shop.core.db import db, new_row
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.core.locking import locked

LEVELS_REASON = (
    "at most 2 levels: paying deeper uplines on their downlines' sales is what China's rules "
    "against pyramid selling and WeChat's platform rules forbid"
)
PROGRAM_FIELDS = (
    "enabled",
    "levels",
    "level1_rate_bp",
    "level2_rate_bp",
    "self_purchase",
    "join_rule",
    "join_min_spent",
    "binding_rule",
    "lapse_days",
    "freeze_days",
    "min_withdrawal",
    "withdrawal_fee_bp",
    "transfer_scene_id",
)
_DEFAULTS = {
    column.name: column.default.arg
    for column in Program.__table__.columns
    if column.default is not None and not callable(column.default.arg)
}


# WeChat Pay asks for the payee's (encrypted) real name on transfers of 2,000 yuan or more; a
# withdrawal stays below that.
MAX_WITHDRAWAL = 199_999
ALL_OF_A_LINE_BP = 10_000  # bp: the levels' commissions on a line, together, at most what it paid


def levels_not_allowed(field: str = "levels") -> InvalidInput:
    return InvalidInput(LEVELS_REASON, code="levels_not_allowed", details={"fields": {field: [LEVELS_REASON]}})


def get_program(merchant_id: int) -> Program:
    """The merchant's program (a detached copy with the defaults when they never set one)."""
    found = db.session.get(Program, merchant_id)
    return found if found is not None else new_row(Program, merchant_id=merchant_id, lapse_days=None, **_DEFAULTS)


def rates_of(program: Program) -> tuple[int, ...]:
    """The program's rate per level, as many as it has levels."""
    return (program.level1_rate_bp, program.level2_rate_bp)[: program.levels]


def update_program(merchant_id: int, **changes: Any) -> Program:
    """Change the settings named in `changes` (`rates_bp`: the rate of each level, in order)."""
    rates = changes.pop("rates_bp", None)
    if changes.get("levels") is not None and changes["levels"] > MAX_LEVELS:
        raise levels_not_allowed()
    if rates is not None:
        if len(rates) > MAX_LEVELS:
            raise levels_not_allowed("rates_bp")
        for level, rate in enumerate(rates, start=1):
            changes[f"level{level}_rate_bp"] = rate
    unknown = set(changes) - set(PROGRAM_FIELDS)
    if unknown:
        raise TypeError(f"unknown program fields {sorted(unknown)}")
    db.session.execute(insert(Program).values(merchant_id=merchant_id).on_conflict_do_nothing())
    program = db.session.execute(locked(select(Program).where(Program.merchant_id == merchant_id))).scalar_one()
    for name, value in changes.items():
        setattr(program, name, value)
    errors: dict[str, list[str]] = {}
    if rates is not None and len(rates) != program.levels:
        errors["rates_bp"] = [f"one rate per level: {program.levels}"]
    elif sum(rates_of(program)) > ALL_OF_A_LINE_BP:
        errors["rates_bp"] = [f"the levels together at most {ALL_OF_A_LINE_BP} bp: all of what a line paid"]
    if program.binding_rule == "first_lapsing" and not program.lapse_days:
        errors["lapse_days"] = ["required when the binding lapses (binding_rule first_lapsing)"]
    if program.min_withdrawal > MAX_WITHDRAWAL:
        errors["min_withdrawal"] = [f"at most {MAX_WITHDRAWAL}: the most one withdrawal may be"]
    if program.join_rule == "spending" and program.join_min_spent <= 0:
        errors["join_min_spent"] = ["required (above 0) when members join by spending"]
    if errors:
        raise InvalidInput("the program settings are not valid", code="validation_error", details={"fields": errors})
    db.session.flush()
    return program


# --- tiers -------------------------------------------------------------------------------------

TIER_FIELDS = (
    "name",
    "rank",
    "level1_rate_bp",
    "level2_rate_bp",
    "min_team_size",
    "min_team_sales",
    "min_own_sales",
    "match",
)


def list_tiers(merchant_id: int) -> list[Tier]:
    return list(db.session.execute(select(Tier).where(Tier.merchant_id == merchant_id).order_by(Tier.rank)).scalars())


def get_tier(merchant_id: int, tier_id: int) -> Tier:
    tier = db.session.get(Tier, tier_id)
    if tier is None or tier.merchant_id != merchant_id:
        raise NotFound("tier not found")
    return tier


def _tier_values(values: Mapping[str, Any]) -> dict[str, Any]:
    out = {name: values[name] for name in TIER_FIELDS if name in values}
    rates = values.get("rates_bp")
    if rates is not None:
        if len(rates) > MAX_LEVELS:
            raise levels_not_allowed("rates_bp")
        padded = [*rates, None, None][:MAX_LEVELS]
        out["level1_rate_bp"], out["level2_rate_bp"] = padded
    return out


def _rank_free(merchant_id: int, rank: int, tier_id: int | None) -> None:
    taken = db.session.execute(
        select(Tier.id).where(Tier.merchant_id == merchant_id, Tier.rank == rank, Tier.id != (tier_id or 0))
    ).first()
    if taken is not None:
        raise Conflict("another tier has that rank", code="tier_rank_taken", details={"fields": {"rank": ["taken"]}})


def create_tier(merchant_id: int, **values: Any) -> Tier:
    fields = _tier_values(values)
    _rank_free(merchant_id, fields["rank"], None)
    tier = Tier(merchant_id=merchant_id, **fields)
    db.session.add(tier)
    db.session.flush()
    return tier


def update_tier(merchant_id: int, tier_id: int, **values: Any) -> Tier:
    tier = db.session.execute(locked(select(Tier).where(Tier.id == tier_id))).scalar_one_or_none()
    if tier is None or tier.merchant_id != merchant_id:
        raise NotFound("tier not found")
    fields = _tier_values(values)
    if "rank" in fields:
        _rank_free(merchant_id, fields["rank"], tier.id)
    for name, value in fields.items():
        setattr(tier, name, value)
    db.session.flush()
    return tier


def delete_tier(merchant_id: int, tier_id: int) -> None:
    """Delete a tier; its distributors keep their place in the program with the program's rates.
    One DELETE ... RETURNING: of two deletes at once, the second finds nothing (404)."""
    deleted = db.session.execute(
        delete(Tier).where(Tier.id == tier_id, Tier.merchant_id == merchant_id).returning(Tier.id)
    ).first()
    if deleted is None:
        raise NotFound("tier not found")


# --- overrides ---------------------------------------------------------------------------------


def list_overrides(merchant_id: int, product_id: int | None = None) -> list[Override]:
    query = select(Override).where(Override.merchant_id == merchant_id)
    if product_id is not None:
        query = query.where(Override.product_id == product_id)
    return list(db.session.execute(query.order_by(Override.product_id, Override.sku_id, Override.level)).scalars())


def set_override(
    merchant_id: int,
    *,
    product_id: int,
    level: int,
    mode: str,
    sku_id: int | None = None,
    rate_bp: int | None = None,
    fixed_amount: int | None = None,
) -> Override:
    """Set (create or replace) the override of a product, or one of its SKUs, at one level."""
    errors: dict[str, list[str]] = {}
    product = db.session.get(Product, product_id)
    if product is None or product.merchant_id != merchant_id:
        errors["product_id"] = ["not found"]
    if sku_id is not None:
        sku = db.session.get(Sku, sku_id)
        if sku is None or sku.merchant_id != merchant_id or sku.product_id != product_id:
            errors["sku_id"] = ["not found (a SKU of the product)"]
    if level > MAX_LEVELS:
        raise levels_not_allowed("level")
    if mode == "rate" and rate_bp is None:
        errors["rate_bp"] = ["required for mode rate"]
    if mode == "fixed" and fixed_amount is None:
        errors["fixed_amount"] = ["required for mode fixed"]
    if mode != "rate" and rate_bp is not None:
        errors["rate_bp"] = [f"not for mode {mode}"]
    if mode != "fixed" and fixed_amount is not None:
        errors["fixed_amount"] = [f"not for mode {mode}"]
    if errors:
        raise InvalidInput("the override is not valid", code="validation_error", details={"fields": errors})
    existing = db.session.execute(
        locked(
            select(Override).where(
                Override.merchant_id == merchant_id,
                Override.product_id == product_id,
                Override.level == level,
                Override.sku_id.is_(None) if sku_id is None else Override.sku_id == sku_id,
            )
        )
    ).scalar_one_or_none()
    if existing is None:
        existing = Override(merchant_id=merchant_id, product_id=product_id, sku_id=sku_id, level=level, mode=mode)
        db.session.add(existing)
    existing.mode, existing.rate_bp, existing.fixed_amount = mode, rate_bp, fixed_amount
    db.session.flush()
    return existing


def delete_override(merchant_id: int, override_id: int) -> None:
    deleted = db.session.execute(
        delete(Override).where(Override.id == override_id, Override.merchant_id == merchant_id).returning(Override.id)
    ).first()
    if deleted is None:
        raise NotFound("override not found")


def overrides_for(merchant_id: int, product_ids: list[int]) -> dict[tuple[int, int | None, int], OverrideRule]:
    """The overrides of these products, keyed as `distribution.rules.rule_for` reads them."""
    if not product_ids:
        return {}
    rows = db.session.execute(
        select(
            Override.product_id, Override.sku_id, Override.level, Override.mode, Override.rate_bp, Override.fixed_amount
        ).where(Override.merchant_id == merchant_id, Override.product_id.in_(sorted(set(product_ids))))
    ).all()
    return {(r.product_id, r.sku_id, r.level): OverrideRule(r.mode, r.rate_bp, r.fixed_amount) for r in rows}
