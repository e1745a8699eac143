"""install() of the test feature package: a handler, an adjuster, its jobs module (a job and a
sweep) and demo data; `uninstall()` (tests only) undoes it, so no other test sees the package."""

from __future__ import annotations

from sqlalchemy import select

from shop.catalog import service as catalog
from shop.catalog.models import Product
from shop.checkout.pricing import register_adjuster, unregister_adjuster
from shop.core.db import db
from shop.core.events import MemberJoined, bus
from shop.core.runner import enqueue, register_sweep, unregister_sweep
from shop.demo import register_demo, unregister_demo
from tests.featurepkg.adjuster import MemberDiscount

WELCOME_JOB = "featurepkg.welcome"
DEMO_PRODUCT = "Featurepkg demo tea"
joined: list[MemberJoined] = []
demo_calls: list[int] = []


def on_member_joined(event: MemberJoined) -> None:
    """Record the event and ask for the welcome job (which runs after the commit)."""
    joined.append(event)
    enqueue(WELCOME_JOB, event.member_id)


def load_demo(merchant_id: int) -> bool:
    demo_calls.append(merchant_id)
    known = db.session.execute(
        select(Product.id).where(Product.merchant_id == merchant_id, Product.title == DEMO_PRODUCT)
    ).first()
    if known:
        return False
    catalog.create_product(
        merchant_id,
        staff_id=None,
        title=DEMO_PRODUCT,
        skus=[{"specs": {}, "price": 1200, "stock": 10}],
        images=["https://img.example.com/featurepkg.jpg"],
    )
    return True


def install() -> None:
    from tests.featurepkg import jobs

    bus.subscribe(MemberJoined, on_member_joined)
    register_adjuster(MemberDiscount(), order=500)
    register_sweep(jobs.sweep_unwelcomed, 300)
    register_demo(load_demo)


def uninstall() -> None:
    from tests.featurepkg import jobs

    bus.unsubscribe(MemberJoined, on_member_joined)
    unregister_adjuster(MemberDiscount.name)
    unregister_sweep(jobs.sweep_unwelcomed)
    unregister_demo(load_demo)
    joined.clear()
    demo_calls.clear()
