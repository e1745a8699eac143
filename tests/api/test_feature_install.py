"""The wiring of a feature package, shown with tests/featurepkg: create_app installs it (its
handler, adjuster, jobs, sweep and demo data), and installing again leaves one of each."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select

from api import FEATURE_PACKAGES, INSTALLED_EXTENSION, create_app
from api.cron import Cron
from api.worker import run_burst
from shop.catalog.models import Product
from shop.checkout.pricing import registered_adjusters
from shop.core.cache import redis_client
from shop.core.db import db, transaction, utcnow
from shop.core.events import MemberJoined, bus
from shop.demo import DEMO_MERCHANT
from shop.identity.models import Member, Merchant
from tests.factories import make_merchant, make_product, member_headers
from tests.featurepkg import install as featurepkg
from tests.featurepkg.adjuster import DISCOUNT
from tests.featurepkg.jobs import WELCOMED, sweep_unwelcomed


@pytest.fixture
def installed(app, ctx):
    """Two more apps with the test package, as two processes (or two test apps) would make them."""
    packages = (*FEATURE_PACKAGES, "tests.featurepkg")
    apps = [create_app(app.config["SETTINGS"], FEATURE_PACKAGES=packages) for _ in range(2)]
    featurepkg.install()  # and once more by hand
    try:
        yield apps
    finally:
        featurepkg.uninstall()
        for other in apps:
            with other.app_context():
                db.engine.dispose()


def test_create_app_installs_shop_then_coupons_and_distribution(app):
    assert app.config["FEATURE_PACKAGES"] == ("coupons", "distribution")
    assert app.extensions[INSTALLED_EXTENSION] == ("shop", "coupons", "distribution")


def test_a_feature_package_is_installed_by_create_app_and_installing_again_subscribes_once(installed, client):
    assert [other.extensions[INSTALLED_EXTENSION] for other in installed] == [
        ("shop", "coupons", "distribution", "tests.featurepkg")
    ] * 2
    assert bus.subscribed(MemberJoined, featurepkg.on_member_joined)
    merchant = make_merchant()
    member_headers(client, merchant.code, "newcomer")
    assert [(event.merchant_id, event.channel) for event in featurepkg.joined] == [(merchant.id, "organic")]


def test_its_adjuster_is_applied_once_in_a_quote(installed, client):
    merchant = make_merchant()
    sku_id = make_product(merchant, skus=[{"specs": {}, "price": 1000, "stock": 5}]).skus[0].id
    assert [a.name for a in registered_adjusters()].count("featurepkg") == 1
    response = client.post(
        "/api/v1/checkout/quote",
        json={"items": [{"sku_id": sku_id, "quantity": 2}], "fulfilment": "delivery"},
        headers=member_headers(client, merchant.code),
    )
    assert response.status_code == 200, response.json
    assert [(a["source"], a["amount"]) for a in response.json["adjustments"]] == [("featurepkg", DISCOUNT)]
    assert response.json["discount_total"] == DISCOUNT


def test_its_sweep_is_listed_once_by_cron(installed, app):
    cron = Cron(redis_client(), app.config["SETTINGS"].queue_name, retry_max=1)
    listed = [(sweep.name, sweep.every) for sweep in cron.sweeps if "featurepkg" in sweep.name]
    assert listed == [("tests.featurepkg.jobs.sweep_unwelcomed", 300)]


def test_its_job_runs_by_name_through_a_real_worker_and_its_sweep_finds_what_the_job_missed(installed, app, client):
    merchant = make_merchant()
    member_headers(client, merchant.code, "welcome-me")  # MemberJoined: the handler enqueues the job by name
    assert run_burst(app)
    db.session.expire_all()
    member = db.session.execute(select(Member).where(Member.merchant_id == merchant.id)).scalar_one()
    assert member.nickname == WELCOMED

    with transaction():  # a member whose job was lost
        db.session.execute(
            insert(Member).values(merchant_id=merchant.id, openid="o-lost", nickname="", created_at=utcnow())
        )
    assert sweep_unwelcomed() >= 1
    db.session.expire_all()
    lost = db.session.execute(select(Member).where(Member.openid == "o-lost")).scalar_one()
    assert lost.nickname == WELCOMED


def test_its_demo_data_is_loaded_by_seed_demo_after_the_shops_and_only_once(installed, app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["groupshop", "seed-demo"])
    assert first.exit_code == 0, first.output
    assert "demo data loaded" in first.output
    demo_id = db.session.execute(select(Merchant.id).where(Merchant.code == DEMO_MERCHANT)).scalar_one()
    assert featurepkg.demo_calls == [demo_id]
    again = runner.invoke(args=["groupshop", "seed-demo"])
    assert "demo data already present" in again.output
    assert featurepkg.demo_calls == [demo_id, demo_id]  # asked again, it finds its data
    titles = db.session.execute(
        select(func.count()).where(Product.merchant_id == demo_id, Product.title == featurepkg.DEMO_PRODUCT)
    ).scalar()
    assert titles == 1
