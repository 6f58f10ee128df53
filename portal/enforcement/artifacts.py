"""Feed snapshots built once per version, served many times.

When the change feed moves, a worker renders each snapshot format (text all/v4/v6, JSON
all/v4/v6) once, with a gzipped copy beside it, into the "feeds" storage (a directory by
default, any Django storage backend through STORAGES["feeds"]) under the SHA-256 of its content,
and records a FeedArtifact row. Web processes look the row up and send the file; they never
build, and hold no body in memory.

Bodies are streamed from a server-side read (COPY on PostgreSQL, a chunked iterator elsewhere)
inside one snapshot transaction, so building costs memory per chunk, not per exemption, and a
body is exactly the version it is filed under.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from threading import Lock
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import connection, transaction
from django.db.models import Exists, F, Func, IntegerField, Max, OuterRef, Q, TextField, Value
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from portal.enforcement.models import Exemption, FeedArtifact, FeedChange

log = logging.getLogger(__name__)

# Format name: (kind, address family or None for both).
FORMATS: dict[str, tuple[str, int | None]] = {
    "txt-all": ("txt", None),
    "txt-4": ("txt", 4),
    "txt-6": ("txt", 6),
    "json-all": ("json", None),
    "json-4": ("json", 4),
    "json-6": ("json", 6),
}
CONTENT_TYPES = {"txt": "text/plain; charset=utf-8", "json": "application/json"}
# Smaller bodies go uncompressed: gzip's header and a round trip cost more than they save.
GZIP_OVER = 1024
# Rows per fetch from the database, and bytes gathered before a write: memory per chunk.
CHUNK_ROWS = 5000
CHUNK_BYTES = 256 * 1024
# Any constant works; a worker that can't take it leaves the build to the one that holds it.
BUILD_LOCK = 7_250_027


def feed_state() -> tuple[int, datetime | None]:
    state = FeedChange.objects.aggregate(seq=Max("seq"), at=Max("at"))
    return state["seq"] or 0, state["at"]


# What web processes last read of the feed state, and when (time.monotonic()); and the artifacts
# of that version they looked up (rows never change: a new version gets new rows).
_state: tuple[float, int, datetime | None] = (-1e9, 0, None)
_known: dict[str, FeedArtifact] = {}
_known_lock = Lock()


def served_state() -> tuple[int, datetime | None]:
    """feed_state() for the snapshot views: at most FEED_VERSION_CACHE_SECONDS old, so that a
    poll answered 304 costs no query at all; a change reaches every process within that time."""
    global _state
    now = time.monotonic()
    read_at, seq, at = _state
    if now - read_at < settings.FEED_VERSION_CACHE_SECONDS:
        return seq, at
    seq, at = feed_state()
    with _known_lock:
        if (seq, at) != _state[1:]:
            _known.clear()
        _state = (now, seq, at)
    return seq, at


def remembered_state() -> tuple[int, datetime | None] | None:
    """served_state() if it needs no query, else None."""
    read_at, seq, at = _state
    return (seq, at) if time.monotonic() - read_at < settings.FEED_VERSION_CACHE_SECONDS else None


def served(name: str, version: str) -> FeedArtifact | None:
    """current(), remembered by this process once found."""
    key = f"{name}-{version}"
    if (hit := _known.get(key)) is not None:
        return hit
    built = current(name, version)
    if built is not None and settings.FEED_VERSION_CACHE_SECONDS > 0:
        with _known_lock:
            _known[key] = built
    return built


def forget(artifact: FeedArtifact) -> None:
    """Its file is gone: delete the row so that a worker builds it again."""
    with _known_lock:
        _known.pop(f"{artifact.format}-{artifact.version}", None)
    FeedArtifact.objects.filter(pk=artifact.pk).delete()


def version_of(seq: int, at: datetime | None) -> str:
    # The time of the latest change makes the version unique even when the sequence starts over
    # (a database restored from a backup): no stale body or 304 survives that.
    return f"{seq}.{int(at.timestamp() * 1_000_000) if at else 0}"


def feed_storage() -> Storage:
    return storages["feeds"]


@contextmanager
def snapshot() -> Iterator[tuple[int, datetime | None]]:
    """A transaction in which the feed state and every row read belong to one version."""
    repeatable = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if repeatable:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield feed_state()


def chunks(kind: str, family: int | None, seq: int, *, limit: int | None = None) -> Iterator[bytes]:
    """The body of a snapshot in pieces of about CHUNK_BYTES; read it inside snapshot().

    JSON items go one a line, so that PostgreSQL can write each as a line of COPY output.
    """
    rows = Exemption.objects.active().order_by("family", "first")
    if family:
        rows = rows.filter(family=family)
    if kind == "json":
        yield b'{"cursor":%d,"count":%d,"exemptions":[\n' % (seq, rows.count())
    lines = rows[:limit] if limit is not None else rows
    if connection.vendor == "postgresql":
        yield from _copied_lines(lines, kind)
    else:
        yield from _iterated_lines(lines, kind)
    if kind == "json":
        yield b"]}"


def _iterated_lines(rows: Any, kind: str) -> Iterator[bytes]:
    batch: list[str] = []
    if kind == "txt":
        for cidr in rows.values_list("cidr", flat=True).iterator(chunk_size=CHUNK_ROWS):
            batch.append(f"{cidr}\n")
            if len(batch) == CHUNK_ROWS:
                yield "".join(batch).encode()
                batch = []
        yield "".join(batch).encode()
        return
    separator = ""
    tenants: dict[str, str] = {}  # each tenant's id, JSON-encoded once
    for id_, tenant, cidr, fam, expires, req in rows.values_list(
        "id", "tenant__external_id", "cidr", "family", "expires_at", "request_id"
    ).iterator(chunk_size=CHUNK_ROWS):
        encoded = tenants.get(tenant) or tenants.setdefault(tenant, json.dumps(tenant, ensure_ascii=False))
        batch.append(
            f'{separator}{{"id":"{id_}","tenant":{encoded},"block":"{cidr}","family":{fam},'
            f'"ports":[25],"state":"active",'
            f'"expires_at":{f'"{_isoformat(expires)}"' if expires else "null"},'
            f'"request":{f'"{req}"' if req else "null"}}}\n'
        )
        separator = ","
        if len(batch) == CHUNK_ROWS:
            yield "".join(batch).encode()
            batch = []
    yield "".join(batch).encode()


def _isoformat(moment: datetime) -> str:
    """As PostgreSQL's to_json writes a time in UTC: the fraction without trailing zeros."""
    text = moment.astimezone(UTC).isoformat()
    if "." not in text:
        return text
    head, rest = text.split(".", 1)
    fraction = rest[:6].rstrip("0")
    return f"{head}.{fraction}{rest[6:]}" if fraction else f"{head}{rest[6:]}"


def _json_line() -> Func:
    """One JSON item as PostgreSQL writes it, byte for byte what _iterated_lines writes."""

    def quoted(expression: Any) -> Func:
        # ||, not Concat: Concat turns NULL into "" where the item needs null.
        return Func(expression, template="""'"' || %(expressions)s || '"'""", output_field=TextField())

    parts = [
        Value(',{"id":"'),
        Cast("id", TextField()),
        Value('","tenant":'),
        Cast(Func(F("tenant__external_id"), function="to_json"), TextField()),
        Value(',"block":"'),
        F("cidr"),
        Value('","family":'),
        Cast(Cast("family", IntegerField()), TextField()),
        Value(',"ports":[25],"state":"active","expires_at":'),
        # to_json, not to_char: a third of the time at a million rows (_isoformat() matches it).
        Coalesce(Cast(Func(F("expires_at"), function="to_json"), TextField()), Value("null")),
        Value(',"request":'),
        Coalesce(quoted(Cast("request_id", TextField())), Value("null"), output_field=TextField()),
        Value("}"),
    ]
    return Func(*parts, function="concat", output_field=TextField())


def _copied_lines(rows: Any, kind: str) -> Iterator[bytes]:
    query = (
        rows.annotate(line=_json_line()).values_list("line") if kind == "json" else rows.values_list("cidr")
    )
    sql, params = query.query.sql_with_params()
    # CSV with a quote character no line contains writes each value as it is: JSON from to_json
    # never holds a raw control character, so nothing gets quoted or escaped.
    statement = (
        f"COPY ({connection.ops.compose_sql(sql, params)}) TO STDOUT "  # type: ignore[attr-defined]
        "(FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01', ESCAPE E'\\x01')"
    )
    buffer = bytearray()
    first = kind == "json"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for data in copy:
            buffer += data
            if first and buffer:
                # Every item starts with its separator; the first has none.
                del buffer[:1]
                first = False
            if len(buffer) >= CHUNK_BYTES:
                yield bytes(buffer)
                buffer.clear()
    yield bytes(buffer)


def build_current() -> int:
    """Worker job: build the snapshot formats the current version lacks; prune old ones."""
    with _build_lock() as holding:
        # Pruning too: a build may reuse a stored file (same content) and name it in its row
        # only at the end, so a prune running beside it could delete the file in between.
        if not holding:
            return 0
        seq, at = feed_state()
        built = 0
        if FeedArtifact.objects.filter(version=version_of(seq, at)).count() < len(FORMATS):
            built = _build()
        return built + prune()


@contextmanager
def _build_lock() -> Iterator[bool]:
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [BUILD_LOCK])
        holding = bool(cursor.fetchone()[0])
    try:
        yield holding
    finally:
        if holding:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [BUILD_LOCK])


def _build() -> int:
    made: list[FeedArtifact] = []
    with snapshot() as (seq, at):
        version = version_of(seq, at)
        done = set(FeedArtifact.objects.filter(version=version).values_list("format", flat=True))
        for name, (kind, family) in FORMATS.items():
            if name not in done:
                made.append(_store(name, kind, family, seq, version))
    FeedArtifact.objects.bulk_create(made, ignore_conflicts=True)
    for artifact in made:
        log.info("feeds: built %s for version %s (%d bytes)", artifact.format, version, artifact.size)
    return len(made)


def _store(name: str, kind: str, family: int | None, seq: int, version: str) -> FeedArtifact:
    digest = hashlib.sha256()
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    size = 0
    with tempfile.TemporaryFile() as plain, tempfile.TemporaryFile() as zipped:
        for chunk in chunks(kind, family, seq):
            digest.update(chunk)
            plain.write(chunk)
            zipped.write(compressor.compress(chunk))
            size += len(chunk)
        zipped.write(compressor.flush())
        # Named by content: an unchanged body is stored once, whatever the versions.
        path = f"{kind}/{digest.hexdigest()[:2]}/{digest.hexdigest()}.{kind}"
        return FeedArtifact(
            format=name,
            version=version,
            seq=seq,
            name=_save(path, plain),
            size=size,
            gzip_name=_save(path + ".gz", zipped),
            gzip_size=zipped.tell(),
        )


def _save(path: str, content: IO[bytes]) -> str:
    storage = feed_storage()
    if storage.exists(path):
        return path
    content.seek(0)
    return storage.save(path, File(content))


def current(name: str, version: str) -> FeedArtifact | None:
    return FeedArtifact.objects.filter(format=name, version=version).first()


def prune(now: datetime | None = None) -> int:
    """Delete artifacts replaced more than FEED_ARTIFACT_GRACE_MINUTES ago, and the files no
    remaining artifact names (content-addressed files are shared by versions)."""
    cutoff = (now or timezone.now()) - timedelta(minutes=settings.FEED_ARTIFACT_GRACE_MINUTES)
    replaced = FeedArtifact.objects.filter(
        format=OuterRef("format"), built_at__gt=OuterRef("built_at"), built_at__lt=cutoff
    )
    old = list(FeedArtifact.objects.filter(Exists(replaced)))
    if not old:
        return 0
    FeedArtifact.objects.filter(pk__in=[a.pk for a in old]).delete()
    names = {a.name for a in old} | {a.gzip_name for a in old}
    kept = FeedArtifact.objects.filter(Q(name__in=names) | Q(gzip_name__in=names))
    still_used = {n for pair in kept.values_list("name", "gzip_name") for n in pair}
    storage = feed_storage()
    for path in names - still_used:
        storage.delete(path)
    return len(old)
