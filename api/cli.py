"""Flask CLI commands: `flask --app wsgi groupshop ...`."""

from __future__ import annotations

import os
from typing import TextIO

import click
from flask import Flask, current_app
from flask.cli import AppGroup

group = AppGroup("groupshop", help="Groupshop commands.")


@group.command("worker")
@click.option("--burst", is_flag=True, help="Run the queued jobs and exit.")
def worker_command(burst: bool) -> None:
    """Run an RQ worker with its scheduler (delayed jobs)."""
    from api.worker import make_worker

    make_worker(current_app._get_current_object()).work(burst=burst, with_scheduler=not burst)


@group.command("cron")
def cron_command() -> None:
    """Enqueue every registered sweep at its interval (run one or more; sweeps are idempotent)."""
    from rq.cron import CronScheduler

    from shop.cache import redis_client
    from shop.runner import sweeps

    scheduler = CronScheduler(connection=redis_client(), name=f"groupshop-cron-{os.getpid()}")
    queue_name = current_app.config["SETTINGS"].queue_name
    for name, (func, every) in sorted(sweeps().items()):
        scheduler.register(func, queue_name, interval=every, name=name)
    scheduler.start()


@group.command("seed-demo")
def seed_demo_command() -> None:
    """Load the demo merchant, staff and catalog unless they are already there."""
    from shop import demo

    created = demo.load_demo_data()
    click.echo("demo data loaded" if created else "demo data already present")


@group.command("create-merchant")
@click.option("--code", required=True)
@click.option("--name", required=True)
@click.option("--appid", required=True)
@click.option("--secret", default="")
@click.option("--owner", "owner_username", required=True)
@click.password_option("--owner-password")
def create_merchant_command(
    code: str, name: str, appid: str, secret: str, owner_username: str, owner_password: str
) -> None:
    """Create a merchant (a tenant) and its owner account."""
    from shop import demo
    from shop.db import transaction

    with transaction():
        merchant = demo.create_merchant(
            code=code,
            name=name,
            appid=appid,
            secret=secret,
            owner_username=owner_username,
            owner_password=owner_password,
        )
    click.echo(f"merchant {merchant.code} created with id {merchant.id}")


@group.command("set-payment-account")
@click.option("--merchant", "merchant_code", required=True, help="the merchant's code")
@click.option("--mchid", required=True, help="WeChat Pay merchant id (商户号)")
@click.option("--serial-no", required=True, help="serial number of the merchant API certificate")
@click.option("--private-key", "private_key_file", required=True, type=click.File("r"), help="apiclient_key.pem")
@click.option("--apiv3-key", required=True, help="the 32-character APIv3 key")
@click.option("--platform-serial", required=True, help="WeChat Pay public key id (or platform certificate serial)")
@click.option(
    "--platform-public-key", "platform_key_file", required=True, type=click.File("r"), help="WeChat Pay public key PEM"
)
def set_payment_account_command(
    merchant_code: str,
    mchid: str,
    serial_no: str,
    private_key_file: TextIO,
    apiv3_key: str,
    platform_serial: str,
    platform_key_file: TextIO,
) -> None:
    """Store (or replace) a merchant's WeChat Pay API v3 credentials for PAYMENT_PROVIDER=wechatpay."""
    from shop.db import transaction
    from shop.payments.accounts import set_payment_account

    with transaction():
        set_payment_account(
            merchant_code,
            mchid=mchid,
            merchant_serial_no=serial_no,
            merchant_private_key=private_key_file.read(),
            apiv3_key=apiv3_key,
            platform_serial_no=platform_serial,
            platform_public_key=platform_key_file.read(),
        )
    click.echo(f"WeChat Pay account stored for {merchant_code}")


def register_cli(app: Flask) -> None:
    app.cli.add_command(group)
