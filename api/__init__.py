"""The HTTP face of Groupshop: `create_app` wires the database, Redis, the job queue, the
external-service clients and the blueprints."""

from __future__ import annotations

import importlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface
from flask_migrate import Migrate
from flask_smorest import Api
from redis import Redis
from rq import Queue
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from werkzeug.routing import IntegerConverter, UnicodeConverter

from api import docs
from api.config import Settings
from api.errors import register_error_handlers
from api.http_rules import register_http_rules
from api.schemas.common import MAX_ID
from shop.core.cache import BACKGROUND_REDIS_EXTENSION, LOCAL_CACHE_EXTENSION, REDIS_EXTENSION, LocalCache
from shop.core.db import db
from shop.core.redisguard import CONNECTION_OPTIONS, guarded_redis, reconnect_retry
from shop.core.runner import QUEUE_EXTENSION
from shop.identity.wechat import FakeWeChatAuth, HttpWeChatAuth

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")
migrate = Migrate()

# The feature packages create_app installs after shop (each `<package>.install.install()`, see
# shop/install.py), in this order; app config FEATURE_PACKAGES overrides it (tests add theirs).
FEATURE_PACKAGES = ("coupons", "distribution")
INSTALLED_EXTENSION = "groupshop.installed"


class IdConverter(IntegerConverter):
    """`<int:...>` in our routes is a row id: one past the bigint range matches no route (404)
    instead of reaching PostgreSQL as an out-of-range number."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class TextConverter(UnicodeConverter):
    """`<name>` in our routes (a merchant code, an order number) names a row by its text: one
    carrying the NUL character matches no route (404) instead of reaching PostgreSQL, which
    refuses NUL even in a query parameter (a 500)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", "[^/\\x00]", 1)


class NoSessions(SessionInterface):
    """The API keeps no cookie session (callers send a Bearer token), so a request opens none:
    Flask's default builds a signing serializer for every request, used or not."""

    def open_session(self, app: Flask, request: Request) -> None:
        return None  # Flask then uses a null session, which refuses to be written to

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        return None


class GroupshopApi(Api):
    """flask-smorest's Api, with our error envelope instead of its own."""

    def _register_error_handlers(self) -> None:
        pass


# A pooled connection unused for longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 5.0


def install_fork_guard(engine: Engine) -> None:
    """A forked process (an RQ work horse, a gunicorn worker) never uses its parent's connections;
    and a connection idle in the pool longer than IDLE_PING_SECONDS is pinged before use."""

    @event.listens_for(engine, "connect")
    def _remember_pid(dbapi_connection: Any, record: Any) -> None:
        record.info["pid"] = os.getpid()

    @event.listens_for(engine, "checkout")
    def _refuse_foreign(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if record.info.get("pid") != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None
            raise DisconnectionError("connection belongs to another process")
        # Ping a connection that sat in the pool a while (the server may have restarted or cut it
        # meanwhile); one returned a moment ago is handed out as it is: pinging every checkout
        # (pool_pre_ping) costs a round trip per request. A connection that breaks anyway fails
        # its statement, and SQLAlchemy then drops every pooled connection older than that.
        if time.monotonic() - record.info.get("used_at", 0.0) > IDLE_PING_SECONDS:
            try:
                ok = engine.dialect.do_ping(dbapi_connection)
            except Exception as exc:
                raise DisconnectionError(f"the pooled connection does not answer: {exc}") from exc
            if ok is False:
                raise DisconnectionError("the pooled connection does not answer")

    @event.listens_for(engine, "checkin")
    def _remember_use(dbapi_connection: Any, record: Any) -> None:
        record.info["used_at"] = time.monotonic()


def background_redis(settings: Settings) -> Redis:
    """A client for the worker, its scheduler and cron (the worker raises its read timeout above
    its blocking dequeue's)."""
    assert settings.redis_url is not None
    timeout = settings.redis_background_timeout
    return Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=reconnect_retry(),
        **CONNECTION_OPTIONS,
    )


def install_packages(app: Flask) -> None:
    """Install shop, then each of the app's FEATURE_PACKAGES: their handlers, adjusters, jobs,
    sweeps and demo data. Each install is idempotent, so a second app changes nothing."""
    from shop.install import install as install_shop

    install_shop()
    installed = ["shop"]
    for package in app.config["FEATURE_PACKAGES"]:
        importlib.import_module(f"{package}.install").install()
        installed.append(package)
    app.extensions[INSTALLED_EXTENSION] = tuple(installed)


def create_app(settings: Settings | None = None, **config: Any) -> Flask:
    settings = settings or Settings.from_env()
    if settings.database_url is None or settings.redis_url is None:
        from api import embedded

        if settings.database_url is None:
            settings.database_url = embedded.start_postgres(settings.data_dir).replace(
                "postgresql://", "postgresql+psycopg://", 1
            )
        if settings.redis_url is None:
            settings.redis_url = embedded.start_redis(settings.data_dir)

    app = Flask("groupshop")
    app.session_interface = NoSessions()
    app.json.sort_keys = False  # the schemas' field order (Flask 3 no longer reads JSON_SORT_KEYS)
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["default"] = app.url_map.converters["string"] = TextConverter
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        TESTING=settings.env == "test",
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS={
            "pool_pre_ping": False,  # install_fork_guard pings the connections that were idle
            # Up to 30 connections per process, as before, all kept once opened: connections beyond
            # pool_size ("overflow") are closed when handed back, so a process whose threads need
            # more than pool_size at once (a stampede on gthread workers) opened and closed some
            # every burst, and each new one pays PostgreSQL a backend and its first use of every
            # function and plan (flash_place()'s included).
            "pool_size": 30,
            "max_overflow": 0,
            "connect_args": {"connect_timeout": 5},
        },
        MAX_CONTENT_LENGTH=1024 * 1024,
        # A network call with a transaction open raises outside production (shop.db).
        STRICT_NETWORK_CALLS=settings.env != "production",
        FEATURE_PACKAGES=FEATURE_PACKAGES,
        API_TITLE="Groupshop API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        **docs.SWAGGER_UI_CONFIG,
        API_SPEC_OPTIONS={
            "info": {
                "description": "Backend of a WeChat mini-program shop. Money is always an integer number "
                'of fen. Errors: {"error": {"code", "message", "details"}}.'
            },
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
            },
        },
    )
    app.config.update(config)
    # Times on every line: an outage is read from the logs of several processes side by side.
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
    )

    if settings.env == "test":
        from shop.identity.staff import use_cheap_hashing

        use_cheap_hashing()
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    with app.app_context():
        install_fork_guard(db.engine)

    # Two clients (connections are opened lazily): the request path's, with short timeouts and a
    # circuit breaker (shop/core/redisguard.py); and the background processes' (worker, its scheduler,
    # cron), which may wait longer and retry rather than skip.
    redis = guarded_redis(settings.redis_url, timeout=settings.redis_timeout, cooloff=settings.redis_cooloff)
    app.extensions[REDIS_EXTENSION] = redis
    app.extensions[BACKGROUND_REDIS_EXTENSION] = background_redis(settings)
    if settings.cache_local_entries and settings.catalog_cache_ttl > 0:
        # Its listener thread starts on the first cached read, in the process that serves it.
        app.extensions[LOCAL_CACHE_EXTENSION] = LocalCache(settings.redis_url, settings.cache_local_entries)
    app.extensions[QUEUE_EXTENSION] = Queue(settings.queue_name, connection=redis)
    from shop.payments.providers import PROVIDER_EXTENSION, FakeWeChatPay, WeChatPayProvider
    from shop.payments.wechatpay import WeChatPayClient

    app.extensions[PROVIDER_EXTENSION] = (
        FakeWeChatPay()
        if settings.payment_provider == "fake"
        else WeChatPayProvider(WeChatPayClient(settings.wechatpay_api_base), settings.public_base_url)
    )
    app.extensions["groupshop.wechat"] = (
        FakeWeChatAuth() if settings.wechat_auth == "fake" else HttpWeChatAuth(settings.wechat_api_base)
    )
    from api.flash_lane import install_flash_lane
    from api.throttle import install_throttling

    install_flash_lane(app)
    install_throttling(app, settings)

    install_packages(app)
    from api import (
        health,
        member_api,
        member_campaigns,
        member_coupons,
        member_distribution,
        member_flash_sales,
        member_group_buys,
        member_orders,
        member_referrals,
        merchant_api,
        merchant_campaigns,
        merchant_coupons,
        merchant_distribution,
        merchant_flash_sales,
        merchant_group_buys,
        merchant_orders,
        merchant_referrals,
        payments_api,
    )
    from api.schemas.common import ErrorSchema

    api = GroupshopApi()
    api.ERROR_SCHEMA = ErrorSchema
    api.init_app(app)
    for blueprint in (
        health.blp,
        member_api.blp,
        member_orders.blp,
        member_coupons.blp,
        merchant_api.blp,
        merchant_orders.blp,
        merchant_coupons.blp,
        member_campaigns.blp,
        merchant_campaigns.blp,
        member_referrals.blp,
        merchant_referrals.blp,
        member_distribution.blp,
        merchant_distribution.blp,
        member_flash_sales.blp,
        merchant_flash_sales.blp,
        member_group_buys.blp,
        merchant_group_buys.blp,
        payments_api.blp,
    ):
        api.register_blueprint(blueprint)
    app.register_blueprint(docs.blp)
    register_error_handlers(app)
    register_http_rules(app)

    from api.cli import register_cli

    register_cli(app)
    return app
