"""The benchmarks' own PostgreSQL database, and Django set up against it.

Import this module before anything that touches Django: it points DATABASE_URL at the bench
database and turns DEBUG off, so that pages are measured as production serves them.

    BENCH_DATABASE_URL   default postgres://postgres@127.0.0.1:5432/bench_portal

`--quick` on any bench command line uses `<name>_quick` instead, so that a quick run never
replaces the full-size fixtures. The database name must start with "bench": the fixture
generator drops and recreates it.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
QUICK = "--quick" in sys.argv[1:]


def _database_url() -> str:
    url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_portal")
    parts = urlsplit(url)
    name = parts.path.lstrip("/") + ("_quick" if QUICK else "")
    if not name.startswith("bench"):
        raise SystemExit(f"The bench database name must start with 'bench' (it gets dropped): {name!r}")
    return urlunsplit(parts._replace(path="/" + name))


URL = _database_url()
NAME = urlsplit(URL).path.lstrip("/")

# What the web and worker processes of the benchmarks run with (the worker subprocess too).
ENV = {
    "DATABASE_URL": URL,
    "DEBUG": "0",
    "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY", secrets.token_urlsafe(50)),
    "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
    "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
    # Nothing a benchmark starts may ask a public resolver or Spamhaus anything.
    "DNS_NAMESERVERS": "127.0.0.1",
    "DNS_PORT": "9",
    "DNS_TIMEOUT": "0.2",
}
os.environ.update(ENV)
os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

# Production serves static files from collectstatic's manifest; the benchmarks don't run
# collectstatic, and the static URLs are the only thing the manifest changes.
settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


def server_connection(dbname: str = "postgres") -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit psycopg connection to `dbname` on the bench server."""
    parts = urlsplit(URL)
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or None,
        dbname=dbname,
        autocommit=True,
    )


def exists() -> bool:
    with server_connection() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [NAME]).fetchone() is not None


def recreate() -> None:
    """Drop the bench database (and only it) and create it empty."""
    from django.db import connection

    connection.close()
    with server_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{NAME}"')


def comment() -> str:
    """The note the fixture generator leaves on the database (the sizes it generated)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [NAME]
        )
        row = cursor.fetchone()
    return str(row[0]) if row and row[0] else ""


def set_comment(text: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f'COMMENT ON DATABASE "{NAME}" IS %s', [text])


def machine() -> str:
    """One line about where the figures come from."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        row = cursor.fetchone()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GiB, PostgreSQL {row[0] if row else '?'} on loopback, "
        f"Python {sys.version.split()[0]}, Django {django.get_version()}; "
        f"load average {os.getloadavg()[0]:.2f} (other work on the machine skews the figures)"
    )
