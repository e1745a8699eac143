"""The catalog: categories (two levels), products with SKUs, shelf status and stock.

Stock changes only in SQL with a guard (`stock + delta >= 0`), each change recorded as a stock
movement. Anything a member-facing read shows (titles, prices, shelf, stock status) bumps the
merchant's catalog cache version after commit, so cached lists are never stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Insert,
    Integer,
    String,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Query

from shop.catalog.models import Category, Product, Sku, StockMovement
from shop.core.cache import bump_after_commit
from shop.core.db import Direct, attach_as_loaded, db, utcnow
from shop.core.errors import Conflict, InvalidInput, NotFound, field_error
from shop.core.locking import locked
from shop.core.pagination import Page, keyset_page

LOW_STOCK = 10
# The stock column is a 32-bit integer: capping the stock here keeps `stock + delta` (at most
# 10 million per adjustment) from overflowing it in SQL.
MAX_STOCK = 2_000_000_000
SORTS = ("newest", "price_asc", "price_desc", "sales")
MAX_PAGE = 50


def catalog_namespace(merchant_id: int) -> str:
    return f"catalog:{merchant_id}"


def stock_status(stock: int) -> str:
    """What members see instead of the exact stock."""
    if stock <= 0:
        return "sold_out"
    if stock <= LOW_STOCK:
        return "low_stock"
    return "in_stock"


def product_stock_status(active_sku_stocks: Iterable[int]) -> str:
    """A product is as available as its best active SKU (sold out when it has none).

    `stock_status` only rises with the stock, so this is also the best of the SKUs' statuses: it
    changes only when some SKU's status does, which is when `move_stock` invalidates the cache.
    """
    return stock_status(max(active_sku_stocks, default=0))


def _invalidate(merchant_id: int) -> None:
    bump_after_commit(catalog_namespace(merchant_id))


# --- categories -------------------------------------------------------------------------------


def get_category(merchant_id: int, category_id: int, *, lock: bool = False) -> Category:
    """The merchant's category; with `lock`, locked FOR UPDATE and re-read, so a concurrent delete or
    a product being filed under it finishes first and what we read is what it left."""
    category = lock_category(category_id) if lock else db.session.get(Category, category_id)
    if category is None or category.merchant_id != merchant_id:
        raise NotFound("category not found")
    return category


def category_tree(merchant_id: int) -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(Category).where(Category.merchant_id == merchant_id).order_by(Category.sort_order, Category.id)
    ).scalars()
    top: dict[int, dict[str, Any]] = {}
    children: list[Category] = []
    for category in rows:
        if category.parent_id is None:
            top[category.id] = _category_dict(category)
        else:
            children.append(category)
    for child in children:
        if child.parent_id in top:
            top[child.parent_id]["children"].append(_category_dict(child))
    return list(top.values())


def _category_dict(category: Category) -> dict[str, Any]:
    return {
        "id": category.id,
        "name": category.name,
        "parent_id": category.parent_id,
        "sort_order": category.sort_order,
        "children": [],
    }


def create_category(merchant_id: int, *, name: str, parent_id: int | None = None, sort_order: int = 0) -> Category:
    if parent_id is not None:
        try:
            parent = get_category(merchant_id, parent_id)
        except NotFound:
            raise field_error("parent_id", "no such category", "category_not_found") from None
        if parent.parent_id is not None:
            raise field_error("parent_id", "categories have two levels: the parent must be top-level")
    category = Category(merchant_id=merchant_id, name=name, parent_id=parent_id, sort_order=sort_order)
    db.session.add(category)
    db.session.flush()
    _invalidate(merchant_id)
    return category


def update_category(
    merchant_id: int, category_id: int, *, name: str | None = None, sort_order: int | None = None
) -> Category:
    category = get_category(merchant_id, category_id, lock=True)
    if name is not None:
        category.name = name
    if sort_order is not None:
        category.sort_order = sort_order
    db.session.flush()
    _invalidate(merchant_id)
    return category


def delete_category(merchant_id: int, category_id: int) -> None:
    # Locked first: a product or sub-category being filed under it meanwhile commits before we look.
    category = get_category(merchant_id, category_id, lock=True)
    in_use = db.session.execute(
        select(exists().where(Category.parent_id == category.id) | exists().where(Product.category_id == category.id))
    ).scalar()
    if in_use:
        raise Conflict("the category still has sub-categories or products", code="category_in_use")
    db.session.delete(category)
    db.session.flush()
    _invalidate(merchant_id)


def _category_and_children(merchant_id: int, category_id: int) -> list[int]:
    ids = db.session.execute(
        select(Category.id).where(
            Category.merchant_id == merchant_id,
            or_(Category.id == category_id, Category.parent_id == category_id),
        )
    ).scalars()
    return list(ids)


# --- products (staff) -------------------------------------------------------------------------


def get_product(merchant_id: int, product_id: int) -> Product:
    product = db.session.get(Product, product_id)
    if product is None or product.merchant_id != merchant_id:
        raise NotFound("product not found")
    return product


def _check_category(merchant_id: int, category_id: int | None) -> None:
    if category_id is None:
        return
    try:
        get_category(merchant_id, category_id)
    except NotFound:
        raise field_error("category_id", "no such category", "category_not_found") from None


def _check_spec_consistency(skus: list[Sku]) -> None:
    active = [s for s in skus if s.active]
    names = {tuple(sorted(s.specs)) for s in active}
    if len(names) > 1:
        raise field_error("skus", "every SKU of a product must name the same specs")
    combos = [tuple(sorted(s.specs.items())) for s in active]
    if len(combos) != len(set(combos)):
        raise field_error("skus", "two SKUs have the same spec values")


def _new_sku(merchant_id: int, data: dict[str, Any]) -> Sku:
    return Sku(
        merchant_id=merchant_id,
        specs=dict(data.get("specs") or {}),
        code=data.get("code", ""),
        price=data["price"],
        market_price=data.get("market_price", 0),
        stock=data.get("stock", 0),
        active=True,
    )


def _refresh_price_range(product: Product) -> None:
    prices = [s.price for s in product.skus if s.active]
    product.price_min = min(prices) if prices else 0
    product.price_max = max(prices) if prices else 0


def create_product(
    merchant_id: int,
    *,
    staff_id: int | None,
    title: str,
    skus: list[dict[str, Any]],
    description: str = "",
    images: list[str] | None = None,
    category_id: int | None = None,
) -> Product:
    """A new product starts as a draft; its SKUs' initial stock is recorded as a movement."""
    _check_category(merchant_id, category_id)
    product = Product(
        merchant_id=merchant_id,
        title=title,
        description=description,
        images=list(images or []),
        category_id=category_id,
        status="draft",
    )
    for data in skus:
        product.skus.append(_new_sku(merchant_id, data))
    _check_spec_consistency(product.skus)
    _refresh_price_range(product)
    db.session.add(product)
    db.session.flush()
    for sku in product.skus:
        if sku.stock:
            _record_movement(sku, sku.stock, sku.stock, "initial", "", staff_id)
    _invalidate(merchant_id)
    return product


def update_product(
    merchant_id: int,
    product_id: int,
    *,
    staff_id: int | None,
    title: str | None = None,
    description: str | None = None,
    images: list[str] | None = None,
    category_id: int | None = None,
    clear_category: bool = False,
    skus: list[dict[str, Any]] | None = None,
) -> Product:
    """Change a product. With `skus`, the list is the new set: entries with an id update that SKU,
    entries without one add a SKU, and SKUs left out are deactivated (orders still refer to them).
    Stock is not set here; it changes only through `adjust_stock`, except a new SKU's initial stock.
    """
    product = lock_product(merchant_id, product_id)  # its SKUs, then it (shop.core.locking)
    if title is not None:
        product.title = title
    if description is not None:
        product.description = description
    if images is not None:
        product.images = list(images)
    if clear_category:
        product.category_id = None
    elif category_id is not None:
        _check_category(merchant_id, category_id)
        product.category_id = category_id
    if skus is not None:
        _replace_skus(product, skus, staff_id)
    db.session.flush()
    _invalidate(merchant_id)
    return product


def _replace_skus(product: Product, skus: list[dict[str, Any]], staff_id: int | None) -> None:
    existing = {s.id: s for s in product.skus}
    seen: set[int] = set()
    added: list[Sku] = []
    for index, data in enumerate(skus):
        sku_id = data.get("id")
        if sku_id is not None:
            if sku_id in seen:
                raise InvalidInput(
                    "a SKU appears twice in the list",
                    code="duplicate_sku",
                    details={"fields": {"skus": {str(index): {"id": ["this SKU is already in the list"]}}}},
                )
            sku = existing.get(sku_id)
            if sku is None:
                raise InvalidInput(
                    "no such SKU on this product",
                    code="sku_not_found",
                    details={"fields": {"skus": {str(index): {"id": ["no such SKU on this product"]}}}},
                )
            if "stock" in data:
                raise InvalidInput(
                    "stock changes go through a stock adjustment with a reason",
                    code="stock_not_editable",
                    details={"fields": {"skus": {str(index): {"stock": ["use the stock adjustment endpoint"]}}}},
                )
            seen.add(sku_id)
            sku.active = True
            for field in ("specs", "code", "price", "market_price"):
                if field in data:
                    setattr(sku, field, data[field])
        else:
            sku = _new_sku(product.merchant_id, data)
            product.skus.append(sku)
            added.append(sku)
    for sku_id, sku in existing.items():
        if sku_id not in seen:
            sku.active = False
    _check_spec_consistency(product.skus)
    _refresh_price_range(product)
    if product.status == "on_shelf" and not any(s.active for s in product.skus):
        raise field_error("skus", "a product on the shelf needs at least one SKU")
    db.session.flush()
    for sku in added:
        if sku.stock:
            _record_movement(sku, sku.stock, sku.stock, "initial", "", staff_id)


def set_shelf(merchant_id: int, product_id: int, *, on_shelf: bool) -> Product:
    product = lock_product(merchant_id, product_id)  # no SKU changes while deciding
    if on_shelf:
        if not any(s.active for s in product.skus):
            raise Conflict("a product needs at least one SKU before it goes on the shelf", code="no_skus")
        product.status = "on_shelf"
    else:
        if product.status == "draft":
            raise Conflict("a draft has never been on the shelf", code="not_on_shelf")
        product.status = "off_shelf"
    db.session.flush()
    _invalidate(merchant_id)
    return product


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def staff_product_page(
    merchant_id: int,
    *,
    status: str | None = None,
    category_id: int | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> Page:
    query = select(Product).where(Product.merchant_id == merchant_id)
    if status:
        query = query.where(Product.status == status)
    if category_id is not None:
        query = query.where(Product.category_id.in_(_category_and_children(merchant_id, category_id)))
    if q:
        query = query.where(Product.title.ilike(f"%{_escape_like(q)}%"))
    return keyset_page(query, [Product.id], cursor=cursor, limit=limit)


# --- stock ------------------------------------------------------------------------------------


def get_sku(merchant_id: int, sku_id: int) -> Sku:
    sku = db.session.get(Sku, sku_id)
    if sku is None or sku.merchant_id != merchant_id:
        raise NotFound("SKU not found")
    return sku


def _record_movement(sku: Sku, delta: int, stock_after: int, reason: str, note: str, staff_id: int | None) -> None:
    db.session.add(
        StockMovement(
            merchant_id=sku.merchant_id,
            sku_id=sku.id,
            delta=delta,
            stock_after=stock_after,
            reason=reason,
            note=note,
            staff_id=staff_id,
        )
    )


def _move_stock_statement(only_active: bool) -> Insert:
    """The guarded UPDATE of a SKU's stock in a CTE, and its movement inserted from the UPDATE's
    RETURNING row (none when the guard refused, and then nothing is inserted either): one
    statement, one round trip. Built once, executed with parameters: building a statement costs
    more than sending it."""
    skus, movements = Sku.__table__, StockMovement.__table__
    delta = bindparam("p_delta", type_=Integer)
    guard = [
        skus.c.id == bindparam("p_sku", type_=BigInteger),
        skus.c.merchant_id == bindparam("p_merchant", type_=BigInteger),
        skus.c.stock + delta >= 0,
        skus.c.stock + delta <= MAX_STOCK,
    ]
    if only_active:
        guard.append(skus.c.active)
    moved = update(skus).where(*guard).values(stock=skus.c.stock + delta).returning(skus.c.stock).cte("moved")
    return (
        insert(movements)
        .from_select(
            ["merchant_id", "sku_id", "delta", "stock_after", "reason", "note", "staff_id", "created_at"],
            select(
                bindparam("p_merchant", type_=BigInteger),
                bindparam("p_sku", type_=BigInteger),
                delta,
                moved.c.stock,
                bindparam("p_reason", type_=String),
                bindparam("p_note", type_=String),
                bindparam("p_staff", type_=BigInteger),
                bindparam("p_at", type_=DateTime(timezone=True)),
            ),
        )
        .add_cte(moved)
        .returning(movements.c.id, movements.c.stock_after)
    )


_MOVE_STOCK = {only_active: Direct(_move_stock_statement(only_active)) for only_active in (False, True)}


@dataclass(frozen=True)
class Moved:
    """A stock movement made: its row's id and the stock after it."""

    movement_id: int
    stock_after: int


def move_stock(
    merchant_id: int,
    sku_id: int,
    delta: int,
    *,
    reason: str,
    note: str = "",
    staff_id: int | None = None,
    only_active: bool = False,
    now: datetime | None = None,
) -> Moved | None:
    """The one way stock changes: in SQL, guarded to stay within [0, MAX_STOCK], recorded as a
    movement, and the catalog cache invalidated when what members see (the status) changes.

    None when the guard refused (not enough stock, over the maximum, or not this merchant's SKU).
    No ORM object is made (orders move stock on their hot path): `adjust_stock` makes one.
    """
    rows = _MOVE_STOCK[only_active].execute(
        {
            "p_merchant": merchant_id,
            "p_sku": sku_id,
            "p_delta": delta,
            "p_reason": reason,
            "p_note": note,
            "p_staff": staff_id,
            "p_at": now or utcnow(),
        }
    )
    if not rows:
        return None
    moved = Moved(*rows[0])
    if stock_status(moved.stock_after - delta) != stock_status(moved.stock_after):
        _invalidate(merchant_id)
    return moved


def adjust_stock(
    merchant_id: int, sku_id: int, *, delta: int, reason: str, note: str = "", staff_id: int | None = None
) -> StockMovement:
    """Staff add (or with a negative delta, remove) stock, never below zero nor above MAX_STOCK."""
    if delta == 0:
        raise field_error("delta", "a stock adjustment changes the stock")
    now = utcnow()
    moved = move_stock(merchant_id, sku_id, delta, reason=reason, note=note, staff_id=staff_id, now=now)
    if moved is None:
        sku = get_sku(merchant_id, sku_id)  # NotFound when it is not ours
        if delta > 0:
            raise Conflict(
                "that adjustment would take the stock above the maximum",
                code="stock_limit",
                details={"stock": sku.stock, "delta": delta, "max": MAX_STOCK},
            )
        raise Conflict(
            "not enough stock for that adjustment",
            code="insufficient_stock",
            details={"stock": sku.stock, "delta": delta},
        )
    return attach_as_loaded(  # the movement's row is in the database already: no second INSERT
        StockMovement(
            id=moved.movement_id,
            merchant_id=merchant_id,
            sku_id=sku_id,
            delta=delta,
            stock_after=moved.stock_after,
            reason=reason,
            note=note,
            staff_id=staff_id,
            created_at=now,
        )
    )


def record_sales(units_by_product: Mapping[int, int]) -> None:
    """Add (or, for refunds, take back) units sold, in product id order so that concurrent
    payments lock the product rows alike. Members see the count within CATALOG_CACHE_TTL.

    Taking back more than was recorded is a counting bug, not a business condition: the products
    CHECK (sales >= 0) fails it loudly rather than clamping the count at zero."""
    for product_id in sorted(units_by_product):
        units = units_by_product[product_id]
        if units:
            db.session.execute(update(Product).where(Product.id == product_id).values(sales=Product.sales + units))


def stock_movements(merchant_id: int, sku_id: int, *, cursor: str | None = None, limit: int = 50) -> Page:
    get_sku(merchant_id, sku_id)
    query = select(StockMovement).where(StockMovement.sku_id == sku_id, StockMovement.merchant_id == merchant_id)
    return keyset_page(query, [StockMovement.id], cursor=cursor, limit=limit)


# --- what members see -------------------------------------------------------------------------

# The stock of a product's best active SKU (0 when it has none): a correlated subquery over
# ix_skus_product, so that a page of cards stays one statement.
_best_stock = (
    select(func.coalesce(func.max(Sku.stock), 0))
    .where(Sku.product_id == Product.id, Sku.active)
    .correlate(Product)
    .scalar_subquery()
    .label("best_stock")
)

_SORT_KEYS = {
    # sort -> (key column or None for id only, descending?)
    "newest": (None, True),
    "price_asc": (Product.price_min, False),
    "price_desc": (Product.price_min, True),
    "sales": (Product.sales, True),
}


def member_product_page(
    merchant_id: int,
    *,
    category_id: int | None = None,
    q: str | None = None,
    sort: str = "newest",
    cursor: str | None = None,
    limit: int = 20,
) -> Page:
    """On-shelf products, keyset-paginated: one query, whatever the page."""
    key, descending = _SORT_KEYS[sort]
    query: Query = select(
        Product.id,
        Product.title,
        Product.images,
        Product.price_min,
        Product.price_max,
        Product.sales,
        Product.category_id,
        _best_stock,
    ).where(Product.merchant_id == merchant_id, Product.status == "on_shelf")
    if category_id is not None:
        query = query.where(Product.category_id.in_(_category_and_children(merchant_id, category_id)))
    if q:
        query = query.where(Product.title.ilike(f"%{_escape_like(q)}%"))
    keys = [Product.id] if key is None else [key, Product.id]
    page = keyset_page(query, keys, cursor=cursor, limit=limit, descending=descending, scalars=False)
    items = [
        {
            "id": r.id,
            "title": r.title,
            "cover": r.images[0] if r.images else "",
            "price_min": r.price_min,
            "price_max": r.price_max,
            "sales": r.sales,
            "category_id": r.category_id,
            "stock_status": product_stock_status((r.best_stock,)),
        }
        for r in page.items
    ]
    return Page(items=items, next_cursor=page.next_cursor)


# What other rooms add to a product's detail, by field name (a door: shop.offers lists the group
# buys and flash sales on it). Each answers for (merchant_id, product_id); the detail is cached
# in the catalog's namespace, so what a provider shows must bump it when it changes.
ProductDetailExtra = Callable[[int, int], Any]
_detail_extras: dict[str, ProductDetailExtra] = {}


def register_detail_extra(name: str, provider: ProductDetailExtra) -> None:
    """Idempotent: the provider of a name registered again replaces the earlier one."""
    _detail_extras[name] = provider


def member_product_detail(merchant_id: int, product_id: int) -> dict[str, Any]:
    product = db.session.execute(
        select(Product).where(
            Product.id == product_id, Product.merchant_id == merchant_id, Product.status == "on_shelf"
        )
    ).scalar_one_or_none()
    if product is None:
        raise NotFound("product not found")
    skus = [s for s in product.skus if s.active]
    spec_options: dict[str, list[str]] = {}
    for sku in skus:
        for name, value in sku.specs.items():
            values = spec_options.setdefault(name, [])
            if value not in values:
                values.append(value)
    overall = product_stock_status(s.stock for s in skus)
    return {
        "id": product.id,
        "title": product.title,
        "description": product.description,
        "images": product.images,
        "category_id": product.category_id,
        "price_min": product.price_min,
        "price_max": product.price_max,
        "market_price_max": max((s.market_price for s in skus), default=0),
        "sales": product.sales,
        "stock_status": overall,
        "spec_options": [{"name": n, "values": v} for n, v in spec_options.items()],
        "skus": [
            {
                "id": s.id,
                "specs": s.specs,
                "price": s.price,
                "market_price": s.market_price,
                "stock_status": stock_status(s.stock),
            }
            for s in skus
        ],
        **{name: provider(merchant_id, product.id) for name, provider in _detail_extras.items()},
    }


def lock_product(merchant_id: int, product_id: int) -> Product:
    """Lock the merchant's product for a staff edit: its SKUs in id order, then the product (the
    order that placements and refunds, which change stock then sales, take them in); 404 unless
    it is the merchant's."""
    skus = select(Sku).where(Sku.product_id == product_id, Sku.merchant_id == merchant_id).order_by(Sku.id)
    db.session.execute(locked(skus)).all()
    product = db.session.execute(locked(select(Product).where(Product.id == product_id))).scalar_one_or_none()
    if product is None or product.merchant_id != merchant_id:
        raise NotFound("product not found")
    return product


def lock_category(category_id: int) -> Category | None:
    """The category FOR UPDATE (it may be about to be deleted: see above), or None."""
    query = locked(select(Category).where(Category.id == category_id), key_share=False)
    return db.session.execute(query).scalar_one_or_none()
