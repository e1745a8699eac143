"""`groupshop create-merchant` applies the API's password rule to the owner's password (one rule,
shared by the schemas, the services and the CLI)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api.schemas.identity import StaffCreateSchema, StaffUpdateSchema
from shop.core.db import db, transaction
from shop.core.errors import InvalidInput
from shop.identity.models import Merchant
from shop.identity.staff import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, create_staff, password_problem, update_staff
from tests.factories import make_merchant


def create_merchant(app, *extra: str, **kwargs):
    args = ["groupshop", "create-merchant", "--code", "cli-shop", "--name", "CLI shop", "--appid", "wxcli0000000001"]
    args += ["--owner", "boss", *extra]
    return app.test_cli_runner().invoke(args=args, **kwargs)


def merchant_exists(code: str = "cli-shop") -> bool:
    return db.session.execute(select(Merchant.id).where(Merchant.code == code)).first() is not None


def login(client, password: str):
    return client.post(
        "/api/v1/merchant/auth/login", json={"merchant": "cli-shop", "username": "boss", "password": password}
    )


@pytest.mark.parametrize("password", ["", "short", "1234567", "p" * (PASSWORD_MAX_LENGTH + 1)])
def test_create_merchant_refuses_an_owner_password_the_api_would_refuse(ctx, password):
    result = create_merchant(ctx, "--owner-password", password)
    assert result.exit_code == 2, result.output
    assert "--owner-password" in result.output
    assert password_problem(password) in result.output
    assert not merchant_exists()


def test_create_merchant_accepts_a_password_the_api_accepts_and_the_owner_can_log_in(ctx, client):
    password = "p" * PASSWORD_MIN_LENGTH
    result = create_merchant(ctx, "--owner-password", password)
    assert result.exit_code == 0, result.output
    assert "merchant cli-shop created" in result.output
    assert merchant_exists()
    assert login(client, password).status_code == 200


def test_a_prompted_owner_password_that_breaks_the_rule_is_asked_again(ctx, client):
    result = create_merchant(ctx, input="short\nlong-enough-pw\nlong-enough-pw\n")
    assert result.exit_code == 0, result.output
    assert password_problem("short") in result.output
    assert login(client, "long-enough-pw").status_code == 200


@pytest.mark.parametrize("password", ["short", "p" * (PASSWORD_MAX_LENGTH + 1)])
def test_the_schemas_and_the_services_refuse_the_same_passwords_with_the_same_words(ctx, password):
    problem = password_problem(password)
    assert problem
    create_errors = StaffCreateSchema().validate({"username": "xiaoli", "password": password, "role": "operator"})
    update_errors = StaffUpdateSchema().validate({"password": password})
    assert create_errors == update_errors == {"password": [problem]}

    merchant = make_merchant()
    with pytest.raises(InvalidInput) as created, transaction():
        create_staff(merchant.id, username="xiaoli", password=password, role="operator")
    assert created.value.details == {"fields": {"password": [problem]}}
    owner = merchant_owner_id(merchant.id)
    with pytest.raises(InvalidInput) as updated, transaction():
        update_staff(merchant.id, owner, acting_staff_id=owner, password=password)
    assert updated.value.details == {"fields": {"password": [problem]}}


def test_a_password_at_either_end_of_the_rule_is_accepted():
    assert password_problem("p" * PASSWORD_MIN_LENGTH) is None
    assert password_problem("p" * PASSWORD_MAX_LENGTH) is None


def merchant_owner_id(merchant_id: int) -> int:
    from shop.identity.models import Staff

    return db.session.execute(
        select(Staff.id).where(Staff.merchant_id == merchant_id, Staff.username == "owner")
    ).scalar_one()


def _create(app, **options: str):
    args = ["groupshop", "create-merchant"]
    values = {"code": "cli-shop", "name": "CLI shop", "appid": "wxcli0000000001", "owner": "boss"}
    values.update(options)
    for name, value in values.items():
        args += [f"--{name}", value]
    return app.test_cli_runner().invoke(args=[*args, "--owner-password", "long-enough-pw"])


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("code", "m 4/ü"),  # could never be in a notification URL
        ("code", "c" * 40),
        ("code", ""),
        ("name", ""),
        ("appid", ""),
        ("appid", "not-an-appid"),
        ("owner", ""),  # an owner who could never log in
        ("owner", "a b"),
    ],
)
def test_create_merchant_refuses_what_the_api_would_with_the_field_not_a_traceback(ctx, option, value):
    result = _create(ctx, **{option: value})
    assert result.exit_code == 1, result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)
    assert "invalid_input" in result.output and f'"{option}"' in result.output
    assert not merchant_exists(value if option == "code" else "cli-shop")


def test_a_merchant_code_taken_is_refused_with_its_code(ctx):
    assert _create(ctx).exit_code == 0
    again = _create(ctx, name="Another")
    assert again.exit_code == 1, again.output
    assert "merchant_code_taken" in again.output
