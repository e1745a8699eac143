"""`make run`: everything a developer needs, started from one command.

With no DATABASE_URL / REDIS_URL it starts the embedded PostgreSQL and Redis under the data
folder (GROUPSHOP_DATA_DIR, default .data); then it migrates, loads the demo data once, starts
gunicorn and an RQ worker (with its scheduler) as child processes pointed at the same servers,
and prints where the docs are. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _banner(port: int, host: str, database_url: str, redis_url: str) -> str:
    from shop.demo import DEMO_APPID, DEMO_MERCHANT, DEMO_STAFF

    base = f"http://{host}:{port}"
    staff_lines = "\n".join(
        f"    {role:<9} username {username!r:<12} password {password!r}" for role, username, password, _ in DEMO_STAFF
    )
    return f"""
Groupshop is running.
  API docs:      {base}/api/docs   (OpenAPI: {base}/api/openapi.json)
  Health:        {base}/healthz
  Database:      {database_url}
  Redis:         {redis_url}

Demo merchant {DEMO_MERCHANT!r} (appid {DEMO_APPID}). Staff log in at POST /api/v1/merchant/auth/login
with {{"merchant": "{DEMO_MERCHANT}", "username": ..., "password": ...}}:
{staff_lines}
Members log in at POST /api/v1/auth/wx-login with {{"merchant": "{DEMO_MERCHANT}", "code": "test:<any name>"}}
(the fake WeChat login turns test:<name> into a stable openid).

Press Ctrl-C to stop.
"""


def main() -> int:
    from api import embedded
    from api.config import Settings

    os.chdir(ROOT)
    settings = Settings.from_env()
    env = dict(os.environ)
    if settings.database_url is None:
        env["DATABASE_URL"] = embedded.start_postgres(settings.data_dir)
    if settings.redis_url is None:
        env["REDIS_URL"] = embedded.start_redis(settings.data_dir)
    os.environ.update(env)

    from flask_migrate import upgrade

    from api import create_app
    from api.http_rules import gunicorn_limit_args
    from shop.demo import load_demo_data

    app = create_app()
    with app.app_context():
        upgrade()
        loaded = load_demo_data()
    print("demo data loaded" if loaded else "demo data already present; reusing it", flush=True)

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    python = sys.executable
    children = [
        subprocess.Popen(
            [
                python,
                "-m",
                "gunicorn",
                "wsgi:app",
                "--bind",
                f"{host}:{port}",
                "--workers",
                workers,
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "5",
                *gunicorn_limit_args(),
            ],
            env=env,
        ),
        subprocess.Popen([python, "-m", "flask", "--app", "wsgi", "groupshop", "worker"], env=env),
        subprocess.Popen([python, "-m", "flask", "--app", "wsgi", "groupshop", "cron"], env=env),
    ]
    print(_banner(port, host, env["DATABASE_URL"], env["REDIS_URL"]), flush=True)

    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    exit_code = 0
    while not stopping:
        for child in children:
            if child.poll() is not None:
                print(f"process {child.args[2]} exited with {child.returncode}; stopping", flush=True)
                stopping, exit_code = True, 1
        time.sleep(0.5)

    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    embedded.stop_all()
    print("stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
