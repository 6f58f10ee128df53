"""Volume fixtures for the benchmarks, loaded with COPY into the bench database.

    .venv/bin/python bench/fixtures.py            # 2,000 tenants, 100,000 requests, 1,000,000
                                                  # reputation events, 100,000 active exemptions
    .venv/bin/python bench/fixtures.py --reset    # drop and regenerate even if the sizes match
    .venv/bin/python bench/fixtures.py --quick    # small sizes, in bench_portal_quick

The database is dropped, recreated, migrated and filled; the sizes are left as the database's
comment, so that the benchmarks reuse fixtures of the right size instead of generating them
again. Everything is random but seeded: two runs give the same data.

What is in it: tenants with a /20 and a /48 each, one customer per tenant, reviewers, approvers
and an admin; requests in every state (open ones submitted over the last week, so about half are
past the review target), with 1 to 4 blocks, a finished vetting run and its check results, audit
events, conversation messages, risk scores, failing checks and assignees; reputation events about
those addresses and others (listings, delistings, complaints, notes); exemptions for the approved
blocks (active, expired, revoked, suspended) with their change feed; DNSBL listing states.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import benchdb

# isort: split
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import connection, transaction

from portal.lib.ipblocks import Network, bounds

PASSWORD = "bench-password-25"  # noqa: S105 - the bench users' password, not a secret
SEED = 25
NOW = datetime.now(UTC).replace(microsecond=0)
CHECKS = ("rdns", "spf", "dmarc", "dnsbl", "dbl", "account_age", "paid_invoices", "identity", "ownership")
OPEN = ("submitted", "in_review", "needs_info")
STATES = {
    "draft": 3,
    "submitted": 8,
    "in_review": 10,
    "needs_info": 4,
    "approved": 50,
    "denied": 20,
    "withdrawn": 5,
}
USE_CASES = ("own_mail_server", "transactional", "forwarding", "other")
ROLES = ("reviewer", "approver", "admin")


@dataclass(frozen=True)
class Sizes:
    tenants: int = 2_000
    requests: int = 100_000
    events: int = 1_000_000
    exemptions: int = 100_000  # active ones; about 10% more in other states

    def label(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


QUICK = Sizes(tenants=50, requests=2_000, events=20_000, exemptions=2_000)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Sizes()
    parser.add_argument("--tenants", type=int, default=defaults.tenants)
    parser.add_argument("--requests", type=int, default=defaults.requests)
    parser.add_argument("--events", type=int, default=defaults.events, help="reputation events")
    parser.add_argument("--exemptions", type=int, default=defaults.exemptions, help="active exemptions")
    parser.add_argument("--quick", action="store_true", help=f"small sizes ({QUICK}), in <database>_quick")


def sizes_from(args: argparse.Namespace) -> Sizes:
    if args.quick:
        return QUICK
    return Sizes(args.tenants, args.requests, args.events, args.exemptions)


def ensure(sizes: Sizes, *, reset: bool = False) -> None:
    """Make the bench database hold fixtures of `sizes`, generating them only if it doesn't."""
    if not reset and benchdb.exists() and benchdb.comment() == sizes.label():
        call_command("migrate", verbosity=0)  # new indexes of the code under test
        print(f"fixtures: reusing {benchdb.NAME} ({sizes.label()})")
        return
    start = time.perf_counter()
    benchdb.recreate()
    call_command("migrate", verbosity=0)
    print(f"fixtures: {benchdb.NAME} recreated and migrated ({time.perf_counter() - start:.1f} s)")
    Generator(sizes).run()
    print("fixtures: VACUUM ANALYZE", end="", flush=True)
    step = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f" ({time.perf_counter() - step:.1f} s)")
    benchdb.set_comment(sizes.label())
    print(f"fixtures: done in {time.perf_counter() - start:.0f} s")


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    step = time.perf_counter()
    count = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
            count += 1
    print(f"fixtures: {table}: {count:,} rows ({time.perf_counter() - step:.1f} s)")
    return count


def block_columns(network: Network) -> tuple[str, int, str, str]:
    b = bounds(network)
    cidr = network.with_prefixlen if network.num_addresses > 1 else str(network.network_address)
    return cidr, b.family, b.first, b.last


@dataclass
class Tenant:
    id: uuid.UUID
    external_id: str
    v4: ipaddress.IPv4Network
    v6: ipaddress.IPv6Network
    customer_id: int
    next_v4: int = 0  # offset of the next unused address in v4 (wraps: addresses get requested again)
    next_v6: int = 0


@dataclass
class Block:
    request_id: uuid.UUID | None
    tenant: Tenant
    network: Network


class Generator:
    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        self.rng = random.Random(SEED)
        self.tenants: list[Tenant] = []
        self.staff: dict[str, list[int]] = {}
        self.approved_blocks: list[tuple[Block, datetime]] = []

    def run(self) -> None:
        with transaction.atomic():
            self.users_and_tenants()
            self.requests()
            self.exemptions()
            self.reputation()

    # People, tenants, allocations ----------------------------------------------------------

    def users_and_tenants(self) -> None:
        rng = self.rng
        password = make_password(PASSWORD)
        groups = {}
        with connection.cursor() as cursor:
            for role in ROLES:
                cursor.execute(
                    "INSERT INTO auth_group (name) VALUES (%s) "
                    "ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
                    [role],
                )
                row = cursor.fetchone()
                assert row is not None
                groups[role] = row[0]
        staff = [("reviewer", n) for n in range(12)] + [("approver", n) for n in range(4)] + [("admin", 0)]
        n = self.sizes.tenants
        emails = [(f"{role}{i}@staff.bench", role == "admin") for role, i in staff]
        emails += [(f"customer{i}@t{i}.bench", False) for i in range(n)]
        copy_rows(
            "auth_user",
            [
                "password",
                "is_superuser",
                "is_staff",
                "username",
                "email",
                "first_name",
                "last_name",
                "is_active",
                "date_joined",
            ],
            ((password, admin, admin, email, email, "", "", True, NOW) for email, admin in emails),
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, username FROM auth_user")
            ids = {username: pk for pk, username in cursor.fetchall()}
        for role, i in staff:
            self.staff.setdefault(role, []).append(ids[f"{role}{i}@staff.bench"])
        copy_rows(
            "auth_user_groups",
            ["user_id", "group_id"],
            ((ids[f"{role}{i}@staff.bench"], groups[role]) for role, i in staff),
        )
        tenant_rows = []
        for i in range(n):
            tenant = Tenant(
                id=uuid.UUID(int=rng.getrandbits(128), version=4),
                external_id=f"bench-{i:05d}",
                v4=ipaddress.IPv4Network((0x0A000000 + (i % 4096) * 4096, 20)),
                v6=ipaddress.IPv6Network((0x20010DB8 << 96 | (i % 65536) << 80, 48)),
                customer_id=ids[f"customer{i}@t{i}.bench"],
            )
            self.tenants.append(tenant)
            opened = date.today() - timedelta(days=rng.randint(10, 5 * 365))
            standing = rng.choices(("good", "past_due", "suspended"), (90, 8, 2))[0]
            tenant_rows.append(
                (
                    tenant.id,
                    tenant.external_id,
                    f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()} {i:05d}",
                    opened,
                    rng.random() < 0.9,
                    standing,
                    rng.randint(0, 60),
                    f"abuse@t{i}.bench",
                    NOW,
                    NOW,
                )
            )
        copy_rows(
            "accounts_tenant",
            [
                "id",
                "external_id",
                "name",
                "account_opened_on",
                "identity_verified",
                "billing_standing",
                "paid_invoices",
                "abuse_contact",
                "created_at",
                "updated_at",
            ],
            tenant_rows,
        )
        copy_rows(
            "accounts_allocation",
            ["id", "cidr", "family", "first", "last", "tenant_id", "assigned_at", "released_at"],
            (
                (uuid.uuid4(), *block_columns(network), t.id, NOW - timedelta(days=3 * 365), None)
                for t in self.tenants
                for network in (t.v4, t.v6)
            ),
        )
        copy_rows(
            "accounts_membership",
            ["user_id", "tenant_id", "created_at"],
            ((t.customer_id, t.id, NOW) for t in self.tenants),
        )

    def pick_tenant(self) -> Tenant:
        # Skewed: a few large tenants file most requests, as in life.
        return self.tenants[int(len(self.tenants) * self.rng.random() ** 2)]

    def new_block(self, tenant: Tenant) -> Network:
        rng = self.rng
        if rng.random() < 0.1:
            offset = tenant.next_v6 % 65536
            tenant.next_v6 += 1
            prefix = 128 if rng.random() < 0.8 else 64
            base = int(tenant.v6.network_address) + (offset << 64 if prefix == 64 else offset)
            return ipaddress.IPv6Network((base, prefix))
        prefix = rng.choices((32, 30, 29, 28), (85, 5, 7, 3))[0]
        size = 2 ** (32 - prefix)
        offset = (tenant.next_v4 + size - 1) // size * size % tenant.v4.num_addresses
        tenant.next_v4 = offset + size
        return ipaddress.IPv4Network((int(tenant.v4.network_address) + offset, prefix))

    # Requests, their blocks, vetting, audit and messages -------------------------------------

    def requests(self) -> None:
        rng = self.rng
        requests: list[tuple[object, ...]] = []
        blocks: list[tuple[object, ...]] = []
        runs: list[tuple[object, ...]] = []
        results: list[tuple[object, ...]] = []
        audit: list[tuple[object, ...]] = []
        messages: list[tuple[object, ...]] = []
        reviewers = self.staff["reviewer"] + self.staff["approver"]
        states, weights = list(STATES), list(STATES.values())
        for _ in range(self.sizes.requests):
            tenant = self.pick_tenant()
            state = rng.choices(states, weights)[0]
            rid = uuid.UUID(int=rng.getrandbits(128), version=4)
            if state in OPEN:
                created = NOW - timedelta(seconds=rng.randint(60, 7 * 86400))
            elif state == "draft":
                created = NOW - timedelta(seconds=rng.randint(60, 30 * 86400))
            else:
                created = NOW - timedelta(seconds=rng.randint(7 * 86400, 730 * 86400))
            submitted = None if state == "draft" else created + timedelta(seconds=rng.randint(5, 600))
            decided = None
            if state in ("approved", "denied"):
                assert submitted is not None
                decided = submitted + timedelta(seconds=rng.randint(600, 3 * 86400))
            vetted = submitted is not None and not (state == "submitted" and rng.random() < 0.05)
            score = min(int(rng.expovariate(1 / 18)), 100) if vetted else None
            band = "" if score is None else "low" if score < 20 else "medium" if score < 50 else "high"
            failing = ""
            if score is not None and score >= 10:
                failing = "," + ",".join(sorted(rng.sample(CHECKS, rng.randint(1, 3)))) + ","
            assignee = None
            if state in ("in_review", "needs_info") or (decided and rng.random() < 0.7):
                assignee = rng.choice(reviewers)
            changed = decided or submitted or created
            requests.append(
                (
                    rid,
                    tenant.id,
                    tenant.customer_id,
                    state,
                    rng.choice(USE_CASES),
                    "We run our own MX for our customers' domains and need direct delivery.",
                    rng.choice(("Postfix 3.8", "Exim 4.97", "OpenSMTPD 7.4", "Haraka 3")),
                    json.dumps([f"mail{rng.randint(1, 9)}.{tenant.external_id}.example"]),
                    rng.randint(10, 50_000),
                    "Hard bounces are suppressed after one failure; FBL complaints unsubscribe at once.",
                    f"abuse@{tenant.external_id}.example",
                    None if state == "draft" else created,
                    created,
                    changed,
                    submitted,
                    changed,
                    decided,
                    score,
                    band,
                    (submitted + timedelta(seconds=20)) if vetted and submitted else None,
                    failing,
                    assignee,
                )
            )
            count = rng.choices((1, 2, 3, 4), (45, 25, 15, 15))[0]
            own = [Block(rid, tenant, self.new_block(tenant)) for _ in range(count)]
            blocks.extend((*block_columns(b.network), rid) for b in own)
            if state == "approved":
                assert decided is not None
                self.approved_blocks.extend((b, decided) for b in own)
            if vetted and submitted is not None and score is not None:
                run = uuid.UUID(int=rng.getrandbits(128), version=4)
                route = "review" if state != "denied" or score < 50 else "auto_deny"
                breakdown = [{"text": f"{c} failed (+10)"} for c in failing.strip(",").split(",") if c]
                runs.append(
                    (
                        run,
                        rid,
                        "submitted",
                        f"customer{tenant.external_id}",
                        "done",
                        1,
                        submitted,
                        submitted,
                        submitted + timedelta(seconds=20),
                        score,
                        band,
                        route,
                        json.dumps(breakdown),
                        "",
                    )
                )
                failed = set(failing.strip(",").split(","))
                for check in CHECKS[:8]:
                    bad = check in failed
                    results.append(
                        (
                            run,
                            check,
                            str(own[0].network),
                            "fail" if bad else "pass",
                            f"{check}: {'problem found' if bad else 'looks right'}",
                            "Fix the record and ask for a re-check." if bad else "",
                            json.dumps({"answers": ["127.0.0.2"]} if bad else {}),
                            10 if bad else 0,
                            False,
                            check in ("account_age", "paid_invoices"),
                        )
                    )
            customer = f"customer@{tenant.external_id}"

            def event(at: datetime, action: str, actor: str, before: str = "", after: str = "") -> None:
                audit.append(audit_row(rid, tenant, at, action, actor, before, after))  # noqa: B023 - called at once

            event(created, "request.created", customer)
            if submitted is not None:
                event(submitted, "request.submit", customer, "draft", "submitted")
            if state not in ("draft", "submitted", "withdrawn"):
                event(
                    submitted + timedelta(seconds=30) if submitted else created, "review.assigned", "reviewer"
                )
            if state == "needs_info":
                asked = (submitted or created) + timedelta(seconds=60)
                event(asked, "request.ask_for_info", "reviewer", "in_review", "needs_info")
                messages.append(
                    (
                        uuid.uuid4(),
                        rid,
                        "reviewer0@staff.bench",
                        "question",
                        "Which domains will you send for?",
                        False,
                        asked,
                    )
                )
            if decided is not None:
                event(
                    decided,
                    f"request.{'approve' if state == 'approved' else 'deny'}",
                    "reviewer",
                    "in_review",
                    state,
                )
        copy_rows(
            "unblock_unblockrequest",
            [
                "id",
                "tenant_id",
                "created_by_id",
                "state",
                "use_case",
                "justification",
                "mail_software",
                "sending_domains",
                "expected_daily_volume",
                "bounce_handling",
                "abuse_contact",
                "aup_accepted_at",
                "created_at",
                "updated_at",
                "submitted_at",
                "state_changed_at",
                "decided_at",
                "risk_score",
                "risk_band",
                "vetted_at",
                "failing_checks",
                "assignee_id",
            ],
            requests,
        )
        copy_rows("unblock_requestedblock", ["cidr", "family", "first", "last", "request_id"], blocks)
        copy_rows(
            "vetting_vettingrun",
            [
                "id",
                "request_id",
                "reason",
                "requested_by",
                "state",
                "attempts",
                "created_at",
                "started_at",
                "finished_at",
                "risk_score",
                "risk_band",
                "route",
                "breakdown",
                "error",
            ],
            runs,
        )
        copy_rows(
            "vetting_checkresult",
            [
                "run_id",
                "check_name",
                "subject",
                "outcome",
                "summary",
                "fix",
                "evidence",
                "score",
                "hard",
                "staff_only",
            ],
            results,
        )
        copy_rows(
            "unblock_message",
            ["id", "request_id", "author_label", "kind", "body", "internal", "created_at"],
            messages,
        )
        copy_rows(
            "audit_auditevent",
            [
                "at",
                "actor_label",
                "action",
                "object_type",
                "object_id",
                "object_label",
                "tenant_id",
                "before",
                "after",
                "reason",
                "request_id",
            ],
            audit,
        )

    # Exemptions and the change feed ------------------------------------------------------------

    def exemptions(self) -> None:
        rng = self.rng
        active = self.sizes.exemptions
        total = active + active // 10
        chosen = self.approved_blocks[:total]
        while len(chosen) < total:
            # Exemptions without a request: imported from the system the portal replaced.
            tenant = self.pick_tenant()
            chosen.append(
                (Block(None, tenant, self.new_block(tenant)), NOW - timedelta(days=rng.randint(1, 700)))
            )
        rng.shuffle(chosen)
        rows, changes = [], []
        for n, (block, created) in enumerate(chosen):
            eid = uuid.UUID(int=rng.getrandbits(128), version=4)
            if n < active:
                state, changed = "active", created
                expires: datetime | None = (
                    NOW + timedelta(days=rng.randint(1, 365)) if rng.random() < 0.9 else None
                )
            else:
                state = rng.choices(("expired", "revoked", "suspended"), (5, 3, 2))[0]
                changed = min(created + timedelta(days=rng.randint(1, 365)), NOW - timedelta(hours=1))
                expires = changed if state == "expired" else created + timedelta(days=365)
                if state == "suspended":  # still in force: the expiry job would have taken it otherwise
                    expires = NOW + timedelta(days=rng.randint(1, 365))
            cidr, family, first, last = block_columns(block.network)
            rows.append(
                (
                    eid,
                    cidr,
                    family,
                    first,
                    last,
                    block.tenant.id,
                    block.request_id,
                    state,
                    expires,
                    created,
                    changed,
                    "",
                    "",
                )
            )
            changes.append(
                (created, "add", "exemption.activated", eid, cidr, family, block.tenant.external_id)
            )
            if state != "active":
                changes.append(
                    (changed, "remove", f"exemption.{state}", eid, cidr, family, block.tenant.external_id)
                )
        copy_rows(
            "enforcement_exemption",
            [
                "id",
                "cidr",
                "family",
                "first",
                "last",
                "tenant_id",
                "request_id",
                "state",
                "expires_at",
                "created_at",
                "state_changed_at",
                "state_reason",
                "reinstatement_note",
            ],
            rows,
        )
        changes.sort(key=lambda c: c[0])
        copy_rows(
            "enforcement_feedchange",
            ["seq", "at", "op", "event", "exemption_id", "cidr", "family", "tenant_external_id"],
            ((seq, *change) for seq, change in enumerate(changes, start=1)),
        )
        listing = {}
        for row in rows:
            if row[7] == "active" and "/" not in str(row[1]):
                listing[str(row[1])] = rng.random() < 0.02
        copy_rows(
            "reputation_listingstatus",
            ["address", "zone", "listed", "codes", "since", "checked_at"],
            (
                (address, "zen.spamhaus.org", listed, json.dumps(["127.0.0.2"] if listed else []), NOW, NOW)
                for address, listed in listing.items()
            ),
        )

    # Reputation events -------------------------------------------------------------------------

    def reputation(self) -> None:
        copy_rows(
            "reputation_reputationevent",
            [
                "cidr",
                "family",
                "first",
                "last",
                "source",
                "kind",
                "zone",
                "code",
                "meaning",
                "abuse",
                "observed_at",
                "recorded_at",
                "tenant_id",
                "summary",
                "evidence",
                "link",
                "reported_by",
            ],
            self.events(),
        )

    def events(self) -> Iterator[tuple[object, ...]]:
        rng = self.rng
        lists = [("127.0.0.2", "SBL", True), ("127.0.0.3", "CSS", True), ("127.0.0.4", "XBL", True)]
        lists += [("127.0.0.10", "PBL", False), ("127.0.0.11", "PBL", False)]
        kinds, weights = ("listed", "delisted", "complaint", "note"), (35, 25, 35, 5)
        for _ in range(self.sizes.events):
            tenant: Tenant | None = None
            if rng.random() < 0.7:
                tenant = self.pick_tenant()
                if rng.random() < 0.9:
                    network: Network = ipaddress.IPv4Network(
                        (int(tenant.v4.network_address) + rng.randrange(tenant.v4.num_addresses), 32)
                    )
                else:
                    network = ipaddress.IPv6Network(
                        (int(tenant.v6.network_address) + rng.randrange(4096), 128)
                    )
            else:
                # Addresses nobody holds (any more): events with no tenant.
                network = ipaddress.IPv4Network((0x0A800000 + rng.randrange(1 << 23), 32))
            kind = rng.choices(kinds, weights)[0]
            observed = NOW - timedelta(seconds=rng.randint(0, 730 * 86400))
            zone = code = meaning = ""
            evidence: dict[str, object] = {}
            abuse = False
            if kind in ("listed", "delisted"):
                source, zone = "dnsbl", "zen.spamhaus.org"
                if kind == "listed":
                    code, name, abuse = rng.choice(lists)
                    meaning = f"{name} listing"
                    evidence = {"codes": [{"code": code, "list": name, "abuse": abuse}]}
                    summary = f"Listed on {name} ({zone})"
                else:
                    summary = f"No longer listed on {zone}"
            elif kind == "complaint":
                source, abuse = rng.choice(("abuse_report", "feedback_loop")), True
                code = "abuse"
                summary = f"Abuse complaint about mail from news@{rng.choice(WORDS)}.example"
            else:
                source, summary = "manual", "Customer says the compromised host was rebuilt."
            yield (
                *block_columns(network),
                source,
                kind,
                zone,
                code,
                meaning,
                abuse,
                observed,
                observed + timedelta(seconds=1),
                tenant.id if tenant else None,
                summary,
                json.dumps(evidence),
                "",
                "abuse desk" if source != "dnsbl" else "",
            )


def audit_row(
    rid: uuid.UUID, tenant: Tenant, at: datetime, action: str, actor: str, before: str, after: str
) -> tuple[object, ...]:
    return (
        at,
        actor,
        action,
        "unblock.unblockrequest",
        str(rid),
        f"Request {str(rid)[:8].upper()}",
        tenant.id,
        json.dumps({"state": before} if before else {}),
        json.dumps({"state": after} if after else {}),
        "",
        "",
    )


WORDS = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "vandelay",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
    "soylent",
    "wonka",
    "gringotts",
    "monarch",
    "oscorp",
    "massive",
    "dynamic",
    "aperture",
    "black",
    "mesa",
    "nakatomi",
    "virtucon",
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    parser.add_argument("--reset", action="store_true", help="regenerate even if the sizes match")
    args = parser.parse_args()
    ensure(sizes_from(args), reset=args.reset)


if __name__ == "__main__":
    main()
