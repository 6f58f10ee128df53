"""The telemetry report body (docs/api.md, "Telemetry").

`counts` may hold 100,000 entries: a serializer per entry would take seconds, so the entries are
checked by one plain loop that still names the entry and the field at fault, and come out as
columns (`ReportCounts`) rather than an object per address.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.telemetry.ingest import ReportCounts
from portal.workflows.telemetry import ReportSpec

MAX_ENTRIES = 100_000
MAX_COUNT = 10**12  # far above any real hour; keeps sums inside a 64-bit column
COUNT_FIELDS = ("blocked", "accepted", "observed")
ENTRY_FIELDS = frozenset(("address", *COUNT_FIELDS))
SOURCES = (("nftables", "nftables counters of the agent"), ("pmacct", "pmacct flow data"))
CLOCK_SKEW = timedelta(hours=1)


class CountEntrySerializer(serializers.Serializer[dict[str, Any]]):
    """One source address (documentation of the entries of `counts`)."""

    address = serializers.IPAddressField(help_text="A single IPv4 or IPv6 address.")
    blocked = serializers.IntegerField(
        min_value=0, required=False, help_text="New port-25 connections dropped (no exemption)."
    )
    accepted = serializers.IntegerField(
        min_value=0, required=False, help_text="New port-25 connections let through (exempted)."
    )
    observed = serializers.IntegerField(
        min_value=0,
        required=False,
        help_text="Connections whose verdict the source does not know (flows): counted as accepted "
        "if an exemption was in force for the address then, else as blocked.",
    )


@extend_schema_field(CountEntrySerializer(many=True))
class CountsField(serializers.Field[ReportCounts, Any, Any, Any]):
    def to_internal_value(self, data: Any) -> ReportCounts:
        if not isinstance(data, list):
            raise serializers.ValidationError(
                'Send counts as a list of objects such as {"address": "192.0.2.10", "blocked": 12}.'
            )
        if len(data) > MAX_ENTRIES:
            raise serializers.ValidationError(
                f"counts has {len(data):,} entries; send at most {MAX_ENTRIES:,} per report and split "
                "the rest into further reports with their own sequence numbers."
            )
        # One pass with no function call per entry on the common path, and no address object:
        # this loop runs 100,000 times a report. Anything unusual goes to `_entry`, which finds
        # the first fault in the documented order and words the error.
        summed: dict[tuple[int, int], list[Any]] = {}
        for index, entry in enumerate(data):
            if type(entry) is not dict or not entry.keys() <= ENTRY_FIELDS:
                _entry(index, entry)
            blocked, accepted, observed = (
                entry.get("blocked", 0),
                entry.get("accepted", 0),
                entry.get("observed", 0),
            )
            if (
                type(blocked) is not int  # also refuses True and False, which are ints
                or type(accepted) is not int
                or type(observed) is not int
                or not 0 <= blocked <= MAX_COUNT
                or not 0 <= accepted <= MAX_COUNT
                or not 0 <= observed <= MAX_COUNT
            ):
                _entry(index, entry)
            raw = entry.get("address")
            try:
                # inet_pton takes only the canonical dotted quad (no leading zeros), which is
                # then already the address's text.
                key, cidr = (4, int.from_bytes(inet_pton(AF_INET, raw))), raw
            except (OSError, TypeError, ValueError):
                key, cidr = _other_address(index, entry)
            row = summed.get(key)
            if row is None:
                summed[key] = [cidr, blocked, accepted, observed]
            else:
                # Two entries for one address (say, IPv6 written two ways) count together.
                row[1] += blocked
                row[2] += accepted
                row[3] += observed
        if not summed:
            return ReportCounts([], [], [], [], [], [])
        families, numbers = zip(*summed, strict=True)
        cidrs, blocked_, accepted_, observed_ = zip(*summed.values(), strict=True)
        return ReportCounts(
            list(cidrs), list(families), list(numbers), list(blocked_), list(accepted_), list(observed_)
        )

    def to_representation(self, value: Any) -> Any:
        return value


def _other_address(index: int, entry: dict[str, Any]) -> tuple[tuple[int, int], str]:
    """(family, number) and text of an entry's address that is not a plain IPv4 one."""
    raw = entry.get("address")
    try:
        packed = inet_pton(AF_INET6, raw)  # type: ignore[arg-type]  # not a str: refused below
    except (OSError, TypeError, ValueError):
        address, _ = _entry(index, entry)  # refuses it, or a form only ipaddress reads
        return (address.version, int(address)), str(address)
    cidr = inet_ntop(AF_INET6, packed)
    if "." in cidr:
        # The C library writes IPv4-compatible addresses in dotted form; the portal writes
        # them as ipaddress does, everywhere else too.
        cidr = str(ipaddress.IPv6Address(packed))
    return (6, int.from_bytes(packed)), cidr


def _entry(index: int, entry: Any) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, list[int]]:
    where = f"counts[{index}]"
    if not isinstance(entry, dict):
        raise serializers.ValidationError(f'{where} is not an object; send {{"address": …, "blocked": …}}.')
    unknown = set(entry) - ENTRY_FIELDS
    if unknown:
        raise serializers.ValidationError(
            f"{where} has unknown field(s) {', '.join(sorted(unknown))}; the fields are address, "
            "blocked, accepted and observed."
        )
    raw = entry.get("address")
    if not isinstance(raw, str):
        raise serializers.ValidationError(f"{where}.address is missing; give the source address as text.")
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        raise serializers.ValidationError(
            f"{where}.address “{raw[:60]}” is not an IP address; give one address such as 192.0.2.10 "
            "or 2001:db8::5 (no prefix length)."
        ) from None
    values = []
    for name in COUNT_FIELDS:
        value = entry.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise serializers.ValidationError(
                f"{where}.{name} is {value!r}; give a whole number from 0 to {MAX_COUNT:,}, or leave it out."
            )
        values.append(value)
    return address, values


class ReportSerializer(serializers.Serializer[ReportSpec]):
    agent = serializers.RegexField(
        r"^[A-Za-z0-9._-]{1,64}\Z",
        max_length=64,
        error_messages={"invalid": "Use 1 to 64 letters, digits, dots, dashes or underscores."},
        help_text="The agent's name, unique across agents (e.g. gw-fra-1).",
    )
    version = serializers.CharField(max_length=64, help_text="The agent's software version.")
    sequence = serializers.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        help_text="Grows with every report of this agent; a report whose sequence is not above the "
        "last one accepted is a duplicate and counts nothing.",
    )
    source = serializers.ChoiceField(choices=SOURCES)  # type: ignore[assignment]
    start = serializers.DateTimeField(help_text="Start of the counted interval (RFC 3339).")
    end = serializers.DateTimeField(help_text="End of the counted interval (RFC 3339).")
    estimated = serializers.BooleanField(
        default=False, help_text="True when counts were scaled from sampled flows."
    )
    counts = CountsField(help_text=f"At most {MAX_ENTRIES:,} entries, one per source address.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError({"end": ["end is before start; send the interval in order."]})
        if attrs["end"] > timezone.now() + CLOCK_SKEW:
            raise serializers.ValidationError(
                {"end": ["end is more than an hour in the future; check the agent's clock (NTP)."]}
            )
        return attrs

    def to_spec(self) -> ReportSpec:
        data = self.validated_data
        return ReportSpec(
            agent=data["agent"],
            version=data["version"],
            sequence=data["sequence"],
            source=data["source"],
            start=data["start"],
            end=data["end"],
            estimated=data["estimated"],
            counts=data["counts"],
        )


class ReceiptSerializer(serializers.Serializer[dict[str, Any]]):
    sequence = serializers.IntegerField()
    duplicate = serializers.BooleanField(help_text="True if this sequence was accepted before.")
    addresses = serializers.IntegerField(help_text="Addresses counted from this report (0 if duplicate).")
    last_sequence = serializers.IntegerField(help_text="The agent's last accepted sequence.")
    signals = serializers.IntegerField(help_text="Reputation events this report triggered.")
