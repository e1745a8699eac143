"""Flask CLI commands: `flask --app wsgi groupshop ...`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TextIO

import click
from flask import Flask, current_app
from flask.cli import AppGroup

group = AppGroup("groupshop", help="Groupshop commands.")


class StaffPassword(click.ParamType):
    """A staff password by the API's rule (shop.identity.staff.password_problem); a prompt asks again."""

    name = "password"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from shop.identity.staff import password_problem

        problem = password_problem(value)
        if problem:
            self.fail(problem, param, ctx)
        return value


@group.command("worker")
@click.option("--burst", is_flag=True, help="Run the queued jobs and exit.")
def worker_command(burst: bool) -> None:
    """Run an RQ worker with its scheduler (delayed jobs); it waits out Redis outages."""
    from api.worker import make_worker, run_worker

    app = current_app._get_current_object()
    if burst:
        make_worker(app).work(burst=True)
    else:
        run_worker(app)


@group.command("cron")
def cron_command() -> None:
    """Enqueue every registered sweep at its interval (run one or more; sweeps are idempotent)."""
    from api.cron import run_cron

    run_cron(current_app._get_current_object())


@group.command("seed-demo")
def seed_demo_command() -> None:
    """Load the demo merchant, staff and catalog, and each installed package's demo data, unless
    they are already there."""
    from shop import demo

    created = demo.load_demo_data()
    click.echo("demo data loaded" if created else "demo data already present")


@group.command("create-merchant")
@click.option("--code", required=True)
@click.option("--name", required=True)
@click.option("--appid", required=True)
@click.option("--secret", default="")
@click.option("--owner", "owner_username", required=True)
@click.password_option("--owner-password", type=StaffPassword())
def create_merchant_command(
    code: str, name: str, appid: str, secret: str, owner_username: str, owner_password: str
) -> None:
    """Create a merchant (a tenant) and its owner account."""
    from shop import demo
    from shop.core.db import transaction

    with _refusals(), transaction():
        merchant = demo.create_merchant(
            code=code,
            name=name,
            appid=appid,
            secret=secret,
            owner_username=owner_username,
            owner_password=owner_password,
        )
    click.echo(f"merchant {merchant.code} created with id {merchant.id}")


@contextmanager
def _refusals() -> Iterator[None]:
    """A refused command (a domain error) ends with its code, message and details, not a traceback."""
    from shop.core.errors import DomainError

    try:
        yield
    except DomainError as exc:
        details = f" {json.dumps(exc.details, ensure_ascii=False)}" if exc.details else ""
        raise click.ClickException(f"{exc.code}: {exc.message}{details}") from None


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


@group.command("set-payment-account")
@click.option("--merchant", "merchant_code", required=True, help="the merchant's code")
@click.option("--mchid", required=True, help="WeChat Pay merchant id (商户号)")
@click.option("--serial-no", required=True, help="serial number of the merchant API certificate")
@click.option("--private-key", "private_key_file", required=True, type=click.File("r"), help="apiclient_key.pem")
@click.option("--apiv3-key", required=True, help="the 32-character APIv3 key")
@click.option("--platform-serial", help="with --platform-public-key: the WeChat Pay public key id (PUB_KEY_ID_...)")
@click.option("--platform-public-key", "platform_key_file", type=click.File("r"), help="WeChat Pay public key PEM")
@click.option("--platform-certificate", "certificate_file", type=click.File("r"), help="a platform certificate PEM")
def set_payment_account_command(
    merchant_code: str,
    mchid: str,
    serial_no: str,
    private_key_file: TextIO,
    apiv3_key: str,
    platform_serial: str | None,
    platform_key_file: TextIO | None,
    certificate_file: TextIO | None,
) -> None:
    """Store (or replace) a merchant's WeChat Pay API v3 credentials for PAYMENT_PROVIDER=wechatpay,
    with a platform key if one is given (more with add-platform-key or fetch-platform-certificates)."""
    from shop.core.db import transaction
    from shop.payments.accounts import set_payment_account

    with _refusals(), transaction():
        set_payment_account(
            merchant_code,
            mchid=mchid,
            merchant_serial_no=serial_no,
            merchant_private_key=private_key_file.read(),
            apiv3_key=apiv3_key,
            platform_serial_no=platform_serial,
            platform_public_key=platform_key_file.read() if platform_key_file else None,
            platform_certificate=certificate_file.read() if certificate_file else None,
        )
    click.echo(f"WeChat Pay account stored for {merchant_code}")


@group.command("add-platform-key")
@click.option("--merchant", "merchant_code", required=True, help="the merchant's code")
@click.option("--public-key", "public_key_file", type=click.File("r"), help="WeChat Pay public key PEM (pub_key.pem)")
@click.option("--serial", help="the public key's id (PUB_KEY_ID_...); read from the certificate otherwise")
@click.option("--certificate", "certificate_file", type=click.File("r"), help="a platform certificate PEM")
def add_platform_key_command(
    merchant_code: str, public_key_file: TextIO | None, serial: str | None, certificate_file: TextIO | None
) -> None:
    """Add a key WeChat Pay signs with: the WeChat Pay public key with its id, or a platform
    certificate (its serial and validity are read from it). Old keys stay until removed."""
    from shop.core.db import transaction
    from shop.payments.accounts import add_platform_key

    with _refusals(), transaction():
        key = add_platform_key(
            merchant_code,
            serial_no=serial,
            public_key=public_key_file.read() if public_key_file else None,
            certificate=certificate_file.read() if certificate_file else None,
        )
    validity = f"valid {_when(key.valid_from)} to {_when(key.valid_until)}"
    click.echo(f"{key.source} {key.serial_no} stored for {merchant_code} ({validity})")


@group.command("list-platform-keys")
@click.option("--merchant", "merchant_code", required=True, help="the merchant's code")
def list_platform_keys_command(merchant_code: str) -> None:
    """The keys WeChat Pay's answers and notifications are verified with, and the one requests name."""
    from shop.core.db import transaction, utcnow
    from shop.payments.accounts import list_platform_keys
    from shop.payments.wechatpay import preferred_serial, valid_at

    with _refusals(), transaction():
        keys = list_platform_keys(merchant_code)
    now = utcnow()
    preferred = preferred_serial(keys, now)
    if not keys:
        click.echo(f"no platform keys for {merchant_code}")
    for key in keys:
        if valid_at(key, now):
            state = "valid"
        else:
            state = "expired" if key.valid_until is not None and key.valid_until <= now else "not yet valid"
        mark = "  (named in requests' Wechatpay-Serial)" if key.serial_no == preferred else ""
        click.echo(f"{key.serial_no}  {key.source}  {_when(key.valid_from)} .. {_when(key.valid_until)}  {state}{mark}")


@group.command("remove-platform-key")
@click.option("--merchant", "merchant_code", required=True, help="the merchant's code")
@click.option("--serial", required=True, help="the key's serial (any case)")
def remove_platform_key_command(merchant_code: str, serial: str) -> None:
    """Remove a platform key (a certificate WeChat Pay no longer uses, a public key replaced)."""
    from shop.core.db import transaction
    from shop.payments.accounts import remove_platform_key

    with _refusals(), transaction():
        remove_platform_key(merchant_code, serial)
    click.echo(f"platform key {serial} removed for {merchant_code}")


@group.command("fetch-platform-certificates")
@click.option("--merchant", "merchant_code", required=True, help="the merchant's code")
def fetch_platform_certificates_command(merchant_code: str) -> None:
    """Download the merchant's platform certificates from WeChat Pay (/v3/certificates), verify
    and store them. `groupshop cron` does it every 12 hours for merchants without a public key."""
    from shop.core.db import transaction
    from shop.identity.merchants import get_active_merchant_by_code
    from shop.payments.jobs import refresh_platform_certificates
    from shop.payments.providers import WeChatPayProvider, payment_provider

    if not isinstance(payment_provider(), WeChatPayProvider):
        raise click.ClickException("PAYMENT_PROVIDER is not wechatpay: there is nothing to fetch")
    with _refusals():
        with transaction():
            merchant_id = get_active_merchant_by_code(merchant_code).id
        outcomes = refresh_platform_certificates(merchant_id)
    for serial, outcome in outcomes.items():
        click.echo(f"{serial}  {outcome}")
    if not outcomes:
        click.echo("WeChat Pay listed no certificates")


@group.command("unlock-login")
@click.option("--merchant", "merchant_code", required=True, help="the merchant's code")
@click.option("--username", required=True, help="the staff username")
def unlock_login_command(merchant_code: str, username: str) -> None:
    """Lift a staff account's login lockout and forget its failed attempts."""
    from api.throttle import STAFF_LOGIN, limiter

    limiter().unlock(STAFF_LOGIN, merchant_code, username)
    click.echo(f"login lockout of {username} at {merchant_code} lifted")


@group.command("settle-commissions")
@click.option(
    "--batch", default=10_000, show_default=True, type=click.IntRange(1, 100_000), help="commissions per transaction"
)
def settle_commissions_command(batch: int) -> None:
    """Settle every due commission now (what the settlement sweep does), batch by batch. Safe to
    run beside the sweep or another run: each batch takes rows nobody else holds."""
    from distribution.commissions import due_count
    from distribution.jobs import settle
    from shop.core.db import transaction

    with transaction():
        due = due_count()
    with click.progressbar(length=due, label=f"settling {due} due commissions") as bar:
        settled = settle(batch=batch, progress=bar.update)
    click.echo(f"settled {settled} commissions")


@group.command("reconcile-commissions")
@click.option("--merchant", "merchant_code", default=None, help="one merchant's code (default: all)")
def reconcile_commissions_command(merchant_code: str | None) -> None:
    """Prove every distributor's balances are the sums of their ledger entries and commissions;
    exit 1 listing what does not add up."""
    from distribution.ledger import reconcile
    from shop.core.db import db
    from shop.identity.models import Merchant

    merchant_id = None
    if merchant_code is not None:
        merchant = db.session.query(Merchant).filter_by(code=merchant_code).one_or_none()
        if merchant is None:
            raise click.ClickException(f"no merchant {merchant_code!r}")
        merchant_id = merchant.id
    checked, problems = reconcile(merchant_id)
    for problem in problems:
        click.echo(
            f"distributor {problem.distributor_id}: {problem.what} is {problem.found},"
            f" its entries say {problem.expected}",
            err=True,
        )
    click.echo(f"{checked} distributors checked, {len(problems)} problems")
    if problems:
        raise SystemExit(1)


def register_cli(app: Flask) -> None:
    app.cli.add_command(group)
