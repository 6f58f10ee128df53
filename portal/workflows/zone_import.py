"""Whole-space DNSBL monitoring from zone files, for providers too large to ask over DNS.

A DNSBL's rbldnsd dataset, synced to disk, is parsed streaming (`portal.lib.zonefile`), intersected
with the active allocations (PostgreSQL: `inet`/`cidr` and a GiST index; elsewhere the sorted-
interval sweep), and compared with the zone's listed `ListingStatus` rows; only the difference is
written, as the same statuses and events the DNS path writes (`record_listing_batch`, which applies
the suspension policy). IPv4 statuses are per address, as DNS answers; IPv6 runs are stored as CIDR
blocks, since a listed /64 has 2^64 addresses.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from portal.accounts.models import Allocation
from portal.lib.intervals import Block, Hit, coalesce_hits, diff, intersect
from portal.lib.zone_postgres import cidr_blocks, intersect_on_postgres
from portal.lib.zonefile import Dataset, ResolvedZone, ZoneParser, resolve
from portal.reputation.models import ListingSource, ListingStatus, SourceKind
from portal.reputation.recording import holder_index
from portal.vetting import dnsbl
from portal.workflows.reputation import Observation, record_listing_batch

BATCH = 1000  # observations per transaction
FORMATS = ", ".join(d.value for d in Dataset)


class ZoneImportError(Exception):
    """The file can't be imported; nothing was changed."""


@dataclass(frozen=True)
class ZoneFile:
    zone: str
    dataset: Dataset
    path: Path


@dataclass
class ImportResult:
    zone: str
    entries: int = 0
    bad_lines: int = 0
    listed_addresses: int = 0
    transitions: int = 0
    events: int = 0
    method: str = ""
    line_errors: list[str] = field(default_factory=list)


def dataset_of(name: str) -> Dataset:
    try:
        return Dataset(name)
    except ValueError:
        raise ZoneImportError(f"unknown format {name!r}; use one of {FORMATS}") from None


def configured_zone_files() -> list[ZoneFile]:
    """DNSBL_ZONE_FILES entries (`zone:format:path`) and `<zone>.<format>` files in DNSBL_ZONE_DIR."""
    found: dict[str, ZoneFile] = {}
    for entry in settings.DNSBL_ZONE_FILES:
        zone, _, rest = entry.partition(":")
        name, _, location = rest.partition(":")
        if not (zone and location) or name not in set(Dataset):
            raise ImproperlyConfigured(f"DNSBL_ZONE_FILES: {entry!r} is not zone:format:path ({FORMATS})")
        found[zone] = ZoneFile(zone, Dataset(name), Path(location))
    if settings.DNSBL_ZONE_DIR:
        directory = Path(settings.DNSBL_ZONE_DIR)
        # rsync writes into hidden temporary files and renames them: only finished files count.
        for path in sorted(directory.glob("[!.]*.*")) if directory.is_dir() else []:
            zone, _, suffix = path.name.rpartition(".")
            if suffix in set(Dataset) and path.is_file():
                found.setdefault(zone, ZoneFile(zone, Dataset(suffix), path))
    return list(found.values())


def import_zone_file(
    *, zone: str, path: Path, dataset: Dataset, allow_empty: bool = False, now: datetime | None = None
) -> ImportResult:
    """Import one zone file; raises ZoneImportError (and records it on the source) if it can't."""
    source = _source(zone, path)
    started = now or timezone.now()
    try:
        with _exclusive(zone):
            return _import(source, zone, path, dataset, allow_empty, started)
    except ZoneImportError as exc:
        ListingSource.objects.filter(pk=source.pk).update(last_error=f"{path}: {exc}"[:500])
        raise


def watch_zone_files() -> int:
    """The periodic job: import each configured file whose mtime changed, or whose last import is
    older than DNSBL_ZONE_REIMPORT_MINUTES (allocations change too). Returns files imported."""
    imported = 0
    reimport = timedelta(minutes=settings.DNSBL_ZONE_REIMPORT_MINUTES)
    for spec in configured_zone_files():
        source = ListingSource.objects.filter(name=_name(spec.zone)).first()
        try:
            mtime = _mtime(spec.path)
        except ZoneImportError as exc:
            _source(spec.zone, spec.path)
            ListingSource.objects.filter(name=_name(spec.zone)).update(last_error=f"{spec.path}: {exc}"[:500])
            continue
        fresh = (
            source is not None
            and not source.last_error
            and source.file_mtime == mtime
            and source.path == str(spec.path)
            and source.last_pass_finished_at is not None
            and source.last_pass_finished_at > timezone.now() - reimport
        )
        if fresh:
            continue
        try:
            import_zone_file(zone=spec.zone, path=spec.path, dataset=spec.dataset)
            imported += 1
        except ZoneImportError:
            continue  # recorded on the source: /healthz shows it
    return imported


def _import(
    source: ListingSource, zone: str, path: Path, dataset: Dataset, allow_empty: bool, started: datetime
) -> ImportResult:
    mtime = _mtime(path)
    parser = ZoneParser(dataset)
    result = ImportResult(zone)
    try:
        with path.open(encoding="utf-8", errors="replace") as lines:
            resolved = resolve(parser, _counted(lines, result))
    except OSError as exc:
        raise ZoneImportError(f"can't read the file ({exc.strerror})") from None
    result.bad_lines = parser.error_count
    result.line_errors = [str(e) for e in parser.errors]
    if not resolved.count():
        if result.bad_lines:
            raise ZoneImportError(
                f"no line could be read as {dataset.value}; first error: {parser.errors[0]}"
            )
        if not allow_empty:
            raise ZoneImportError(
                "the file lists nothing: refusing to delist every address (a truncated sync?); "
                "import it with --allow-empty if the zone really is empty"
            )
    blocks = _allocations()
    current, result.method = _hits(resolved, blocks)
    result.listed_addresses = sum(h.size for h in current if h.version == 4)
    previous = _previous(zone)
    transitions = list(diff(previous, current))
    result.transitions = len(transitions)
    observed_at = timezone.now()
    _regrid_v6(zone, [t for t in transitions if t.version == 6], observed_at)
    holders = holder_index(observed_at) if transitions else None
    for batch in _batches(_observations(zone, transitions), BATCH):
        events = record_listing_batch(zone=zone, observations=batch, observed_at=observed_at, holders=holders)
        result.events += len(events)
    ListingStatus.objects.filter(zone=zone, listed=True).update(checked_at=observed_at)
    allocated = sum(_weight(b) for b in blocks)
    source.kind, source.path, source.file_mtime = SourceKind.ZONE_FILE, str(path), mtime
    source.file_serial = _serial(parser.soa)
    source.file_entries = result.entries
    source.interval_seconds = settings.DNSBL_ZONE_REIMPORT_MINUTES * 60
    source.last_pass_started_at, source.last_pass_finished_at = started, timezone.now()
    source.addresses_allocated = source.addresses_checked = allocated
    source.errors_last_pass = result.bad_lines
    source.last_error = ""
    source.save()
    return result


def _hits(resolved: ResolvedZone, blocks: list[Block]) -> tuple[list[Hit], str]:
    # Measured (docs/performance.md): the sweep is ~3x faster than shipping 2 million zone rows
    # into PostgreSQL for a GiST join, so the database path is opt-in.
    if connection.vendor == "postgresql" and settings.DNSBL_ZONE_INTERSECTION == "postgresql":
        table = Allocation._meta.db_table
        with connection.cursor() as cursor:
            sql = f"SELECT cidr FROM {table} WHERE released_at IS NULL"  # noqa: S608 (our own table name)
            return intersect_on_postgres(cursor, sql, resolved.intervals()), "postgresql"
    return list(intersect(resolved.intervals(), blocks)), "sweep"


def _allocations() -> list[Block]:
    rows = Allocation.objects.active().order_by("family", "first").values_list("family", "first", "last")
    return [Block(family, int(first, 16), int(last, 16)) for family, first, last in rows]


def _previous(zone: str) -> list[Hit]:
    rows = ListingStatus.objects.filter(zone=zone, listed=True).values_list("address", "codes")
    hits = []
    for address, codes in rows.iterator(chunk_size=10_000):
        network = ipaddress.ip_network(address)
        first, last = int(network.network_address), int(network.broadcast_address)
        hits.append(Hit(network.version, first, last, tuple(codes)))
    hits.sort(key=lambda h: (h.version, h.first))
    return list(coalesce_hits(hits))


def _observations(zone: str, transitions: Iterable[Any]) -> Iterator[Observation]:
    known = dnsbl.codes_for(zone)
    for transition in transitions:
        codes = [_code(value, known, zone) for value in transition.after]
        if transition.version == 4:
            for number in range(transition.first, transition.last + 1):
                yield Observation(str(ipaddress.IPv4Address(number)), codes)
        else:
            for block in _v6_blocks(transition.first, transition.last):
                yield Observation(block, codes)


def _code(value: str, known: dict[str, dnsbl.Code], zone: str) -> dict[str, Any]:
    # The same evidence as a DNS look-up writes (dnsbl.check_address), so events look alike.
    code = known.get(value, dnsbl.Code("listed", f"listed on {zone}", True))
    return {"code": value, "list": code.name, "meaning": code.meaning, "abuse": code.abuse}


def _v6_blocks(first: int, last: int) -> Iterator[str]:
    for network, prefix in cidr_blocks(6, first, last):
        address = ipaddress.IPv6Address(network)
        yield str(address) if prefix == 128 else f"{address}/{prefix}"


def _regrid_v6(zone: str, transitions: list[Any], now: datetime) -> None:
    """Cut listed IPv6 rows along the transitions' blocks, keeping their state, so that each
    transition block then has exactly one row to compare with (or none if it was not listed)."""
    if not transitions:
        return
    rows = [
        (s, ipaddress.ip_network(s.address))
        for s in ListingStatus.objects.filter(zone=zone, listed=True, address__contains=":")
    ]
    with transaction.atomic(durable=True):
        for status, network in rows:
            first, last = int(network.network_address), int(network.broadcast_address)
            cuts = [t for t in transitions if t.first <= last and t.last >= first]
            if not cuts:
                continue
            status.delete()
            pieces: list[tuple[int, int]] = []
            position = first
            for t in cuts:
                if t.first > position:
                    pieces.append((position, t.first - 1))
                position = max(position, t.last + 1)
            if position <= last:
                pieces.append((position, last))
            pieces += [(max(first, t.first), min(last, t.last)) for t in cuts]
            for piece_first, piece_last in pieces:
                for block in _v6_blocks(piece_first, piece_last):
                    ListingStatus.objects.update_or_create(
                        zone=zone,
                        address=block,
                        defaults={
                            "listed": True,
                            "codes": status.codes,
                            "since": status.since,
                            "checked_at": status.checked_at,
                        },
                    )


def _batches(items: Iterable[Observation], size: int) -> Iterator[list[Observation]]:
    batch: list[Observation] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _counted(lines: Iterable[str], result: ImportResult) -> Iterator[str]:
    for line in lines:
        result.entries += 1
        yield line


def _weight(block: Block) -> int:
    # IPv6 counts in /64s (a subnet), IPv4 in addresses: both fit the column and mean something.
    size = block.last - block.first + 1
    return size if block.version == 4 else max(1, size >> 64)


def _serial(soa: str | None) -> str:
    parts = (soa or "").split()
    return parts[3] if len(parts) > 3 else ""


def _mtime(path: Path) -> datetime:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ZoneImportError("no such file") from None
    except OSError as exc:
        raise ZoneImportError(f"can't read the file ({exc.strerror})") from None
    if not path.is_file():
        raise ZoneImportError("not a regular file")
    if not os.access(path, os.R_OK):
        raise ZoneImportError("permission denied")
    return datetime.fromtimestamp(stat.st_mtime, tz=UTC)


def _name(zone: str) -> str:
    return f"file:{zone}"


def _source(zone: str, path: Path) -> ListingSource:
    source, _ = ListingSource.objects.get_or_create(
        name=_name(zone),
        defaults={
            "kind": SourceKind.ZONE_FILE,
            "zone": zone,
            "path": str(path),
            "interval_seconds": settings.DNSBL_ZONE_REIMPORT_MINUTES * 60,
        },
    )
    return source


@contextmanager
def _exclusive(zone: str) -> Iterator[None]:
    """One import of a zone at a time (the periodic job and a manual command may meet)."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [f"zone_import:{zone}"])
        (locked,) = cursor.fetchone() or (False,)
    if not locked:
        raise ZoneImportError("another import of this zone is running")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [f"zone_import:{zone}"])
