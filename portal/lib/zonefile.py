"""Reading DNSBL zones in rbldnsd's dataset formats, streaming, with rbldnsd's own semantics.

`ZoneParser(dataset).parse(lines)` yields one `Entry` per listed or excluded range, as integer
intervals, without holding the file; bad lines are collected on the parser (bounded) and skipped,
so a feed with a few broken lines still imports the rest. `resolve(parser, lines)` then turns the
entries into what a DNS query would answer: per listing (A value and TXT template), a sorted list
of non-overlapping intervals.

Semantics follow rbldnsd 1.0 (rbldnsd(8) and its sources), checked against the Debian package:

- ip4set: ranges are split on octet boundaries into /32, /24, /16 and /8 buckets and a query is
  answered from the most specific bucket holding the address; in that bucket an exclusion wins,
  otherwise every entry's value is returned (one address can carry several A records).
- ip4tset: single addresses; one value for the whole dataset (its first `:` line, wherever it is).
- ip6tset: /64s written as four words, exclusions of single /128 addresses, one value.
- ip6trie: CIDR prefixes, longest prefix wins, exclusions; a repeated prefix keeps its first value.
"""

from __future__ import annotations

import bisect
import enum
import heapq
import ipaddress
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

MAX_TXT = 255  # rbldnsd truncates TXT templates to one character-string
V6_MARKS = " \t#;"  # colons belong to IPv6 addresses, so a value there follows whitespace


class Dataset(enum.StrEnum):
    IP4SET = "ip4set"
    IP4TSET = "ip4tset"
    IP6TSET = "ip6tset"
    IP6TRIE = "ip6trie"


class Listing(NamedTuple):
    """What a listed address answers: its A record and TXT template (None: no TXT record)."""

    value: str
    txt: str | None


DEFAULT_LISTING = Listing("127.0.0.2", None)


class Entry(NamedTuple):
    version: int
    first: int
    last: int
    listing: Listing | None  # None for an exclusion (!…)
    # How specific the entry is: rbldnsd answers from the most specific entries covering an
    # address (the ip4set bucket, the prefix length in a trie).
    level: int
    line: int

    @property
    def excluded(self) -> bool:
        return self.listing is None

    @property
    def value(self) -> str | None:
        return None if self.listing is None else self.listing.value


@dataclass(frozen=True)
class LineError:
    line: int
    text: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}: {self.text!r}"


class ZoneLineError(ValueError):
    pass


@dataclass
class ZoneParser:
    dataset: Dataset
    max_errors: int = 100
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0
    ttl: int | None = None
    soa: str | None = None
    ns: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    # ip4tset and ip6tset: the first `:` line applies to every entry, even those before it.
    dataset_listing: Listing = DEFAULT_LISTING
    _dataset_listing_seen: bool = False
    _default: Listing = DEFAULT_LISTING
    _max_range4: int | None = None
    _trie_seen: dict[tuple[int, int], int] = field(default_factory=dict)

    def parse(self, lines: Iterable[str]) -> Iterator[Entry]:
        line_for = {
            Dataset.IP4SET: self._ip4set,
            Dataset.IP4TSET: self._ip4tset,
            Dataset.IP6TSET: self._ip6tset,
            Dataset.IP6TRIE: self._ip6trie,
        }[self.dataset]
        for number, raw in enumerate(lines, start=1):
            text = raw.strip(" \t\r\n")
            if not text or text[0] == ";" or (text[0] == "#" and text[1:2] != "$"):
                continue
            try:
                if text[0] == "$" or text[:2] in ("#$", ":$"):
                    self._special(text[1:] if text[0] == "$" else text[2:])
                    continue
                yield from line_for(text, number)
            except ZoneLineError as exc:
                self._error(number, text, str(exc))

    def _error(self, line: int, text: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(LineError(line, text[:200], message))

    def _special(self, text: str) -> None:
        keyword, _, rest = text.partition(" ")
        if "\t" in keyword:
            keyword, _, more = keyword.partition("\t")
            rest = f"{more} {rest}"
        rest = rest.strip()
        upper = keyword.upper()
        if upper == "TTL":
            if not rest.isdigit():
                raise ZoneLineError("$TTL needs a number of seconds")
            self.ttl = int(rest)
        elif upper == "SOA":
            if len(rest.split()) != 8:
                raise ZoneLineError("$SOA needs ttl, origin, person, serial, refresh, retry, expire, minttl")
            self.soa = self.soa or rest  # rbldnsd keeps the first
        elif upper == "NS":
            if len(rest.split()) < 2:
                raise ZoneLineError("$NS needs a ttl and at least one name server")
            self.ns = self.ns or rest
        elif upper == "MAXRANGE4":
            size = 1 << (32 - int(rest[1:])) if rest[1:].isdigit() and rest[0] == "/" else None
            size = int(rest) if rest.isdigit() else size
            if not size:
                raise ZoneLineError("$MAXRANGE4 needs a number of addresses or a /prefix")
            # Can be lowered, never raised (rbldnsd(8)).
            self._max_range4 = min(size, self._max_range4 or size)
        elif upper == "TIMESTAMP":
            pass  # rbldnsd refuses stale data with it; the importer has its own file-age check
        elif len(keyword) == 1 and (keyword.isdigit() or keyword == "="):
            if not rest:
                raise ZoneLineError(f"${keyword} needs a text")
            self.variables.setdefault(keyword, rest)
        else:
            raise ZoneLineError("unrecognised special entry")

    # -- datasets ---------------------------------------------------------------------------

    def _ip4set(self, text: str, number: int) -> Iterator[Entry]:
        if text[0] == ":":
            self._default = parse_value(text, self._default)
            return
        excluded = text[0] == "!"
        if excluded:
            text = text[1:].lstrip(" \t")
        address, rest = _split_entry(text)
        first, last = parse_ip4_range(address)
        if self._max_range4 is not None and last - first + 1 > self._max_range4:
            raise ZoneLineError(f"range covers more than $MAXRANGE4 ({self._max_range4}) addresses")
        listing = None if excluded else self._entry_value(rest)
        for start, end, level in ip4set_buckets(first, last):
            yield Entry(4, start, end, listing, level, number)

    def _ip4tset(self, text: str, number: int) -> Iterator[Entry]:
        if text[0] == ":":
            self._set_dataset_listing(text)
            return
        address, _ = _split_entry(text)
        value, bits = parse_ip4_prefix(address) if "/" not in address and "-" not in address else (0, 0)
        if bits != 32:
            raise ZoneLineError("ip4tset takes single addresses only (a.b.c.d)")
        yield Entry(4, value, value, self.dataset_listing, 32, number)

    def _ip6tset(self, text: str, number: int) -> Iterator[Entry]:
        if text[0] == ":" and text[1:2] != ":":
            self._set_dataset_listing(text)
            return
        excluded = text[0] == "!"
        if excluded:
            text = text[1:].lstrip(" \t")
        address, _ = _split_entry(text, V6_MARKS)
        if excluded:
            value = parse_ip6_address(address)
            yield Entry(6, value, value, None, 128, number)
            return
        value, bits = parse_ip6_words(address)
        if bits != 64 or "/" in address:
            raise ZoneLineError("ip6tset lists /64s written as four words, e.g. 2001:db8:1:2")
        yield Entry(6, value, value | (1 << 64) - 1, self.dataset_listing, 64, number)

    def _ip6trie(self, text: str, number: int) -> Iterator[Entry]:
        if text[0] == ":" and text[1:2] != ":":
            self._default = parse_value(text, self._default)
            return
        excluded = text[0] == "!"
        if excluded:
            text = text[1:].lstrip(" \t")
        address, rest = _split_entry(text, V6_MARKS)
        value, bits = parse_ip6_prefix(address)
        listing = None if excluded else self._entry_value(rest)
        earlier = self._trie_seen.setdefault((value, bits), number)
        if earlier != number:
            raise ZoneLineError(f"duplicate of line {earlier}, which is used")
        yield Entry(6, value, value | (1 << (128 - bits)) - 1, listing, bits, number)

    def _entry_value(self, rest: str) -> Listing:
        if not rest or rest[0] in "#;":
            return self._default
        return parse_value(rest, self._default)

    def _set_dataset_listing(self, text: str) -> None:
        listing = parse_value(text, DEFAULT_LISTING)
        if not self._dataset_listing_seen:
            self._dataset_listing_seen = True
            self.dataset_listing = listing


def _split_entry(text: str, marks: str = " \t:#;") -> tuple[str, str]:
    """The address part of an entry line, and what follows it (value, comment)."""
    end = len(text)
    for mark in marks:
        at = text.find(mark)
        if 0 <= at < end:
            end = at
    return text[:end], text[end:].lstrip(" \t")


def parse_value(text: str, default: Listing) -> Listing:
    """`:A:TXT`, `:A:`, `:A` or `TXT`, as after an entry or on a default line (rbldnsd(8))."""
    text = text.lstrip(" \t")
    if text[:1] != ":":
        return Listing(default.value, _txt(text))
    a_text, colon, txt = text[1:].partition(":")
    a_text = a_text.strip(" \t")
    if not colon and a_text[:1] in ("#", ""):
        raise ZoneLineError("invalid A value")
    value = parse_a_value(a_text.split("#")[0].strip(" \t") if not colon else a_text)
    if not colon:
        return Listing(value, default.txt)  # `:4` keeps the default TXT; `:4:` drops it
    return Listing(value, _txt(txt.lstrip(" \t")))


def _txt(text: str) -> str | None:
    if not text or text[0] == "#":
        return None
    return text[:MAX_TXT]


def parse_a_value(text: str) -> str:
    if text.isdigit() and 0 < int(text) < 256:
        return f"127.0.0.{int(text)}"  # rbldnsd's shorthand for 127.0.0.x
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise ZoneLineError(f"invalid A value {text!r}") from None
    if not int(address):
        raise ZoneLineError("A value 0.0.0.0 is not allowed")
    return str(address)


def parse_ip4_prefix(text: str) -> tuple[int, int]:
    """`1`, `1.2`, `1.2.3` or `1.2.3.4` as (address, bits 8/16/24/32), as rbldnsd's ip4prefix."""
    octets = text.split(".")
    if len(octets) > 4:
        raise ZoneLineError("invalid address")
    value = 0
    for octet in octets:
        if not (octet.isascii() and octet.isdigit()) or len(octet) > 3 or int(octet) > 255:
            raise ZoneLineError("invalid address")
        value = value << 8 | int(octet)
    bits = 8 * len(octets)
    return value << (32 - bits), bits


def parse_ip4_range(text: str) -> tuple[int, int]:
    """An ip4set entry as (first, last): address, prefix, CIDR or range (rbldnsd's ip4range)."""
    if "-" in text:
        left, _, right = text.partition("-")
        first, bits = parse_ip4_prefix(left)
        last, last_bits = parse_ip4_prefix(right)
        if last_bits == 8:
            # 127.0.0.1-2 means 127.0.0.1-127.0.0.2: the number replaces the first's last octet
            last = (last >> (bits - 8)) | (first & _mask4(bits - 8))
            last_bits = bits
        elif last_bits != bits:
            raise ZoneLineError("both ends of a range need the same number of octets")
        last |= ~_mask4(last_bits) & 0xFFFFFFFF
        if first > last:
            raise ZoneLineError("range ends before it starts")
        return first, last
    address, slash, prefix = text.partition("/")
    first, bits = parse_ip4_prefix(address)
    if slash:
        if not (prefix.isascii() and prefix.isdigit()) or int(prefix) > 32:
            raise ZoneLineError("invalid prefix length")
        bits = int(prefix)
    elif bits == 8:
        raise ZoneLineError("a bare number is not an address; write 10/8")
    if first & ~_mask4(bits) & 0xFFFFFFFF:
        raise ZoneLineError("invalid range (non-zero host part)")
    return first, first | (~_mask4(bits) & 0xFFFFFFFF)


def _mask4(bits: int) -> int:
    return (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF


def ip4set_buckets(first: int, last: int) -> Iterator[tuple[int, int, int]]:
    """Split a range as rbldnsd's ip4set stores it: (first, last, bucket bits) pieces."""
    a, b = first, last
    for shift in (0, 8, 16):
        bucket = 32 - shift
        if a > b:
            return
        if (a | 255) >= b:
            whole = b - a == 255  # a full block of this bucket is one entry of the next one
            yield a << shift, ((b + 1) << shift) - 1, bucket - 8 if whole else bucket
            return
        if a & 255:
            yield a << shift, ((a | 255) + 1 << shift) - 1, bucket
            a = (a >> 8) + 1
        else:
            a >>= 8
        if b & 255 != 255:
            yield (b & ~255) << shift, ((b + 1) << shift) - 1, bucket
            b = (b >> 8) - 1
        else:
            b >>= 8
    if a <= b:
        yield a << 24, ((b + 1) << 24) - 1, 8


def parse_ip6_words(text: str) -> tuple[int, int]:
    """Up to eight hex words without `::`, as (address, 16 * words): rbldnsd's ip6prefix."""
    words = text.split(":")
    if len(words) > 8:
        raise ZoneLineError("invalid address")
    value = 0
    for word in words:
        if not word or len(word) > 4 or any(ch not in "0123456789abcdefABCDEF" for ch in word):
            raise ZoneLineError("invalid address")
        value = value << 16 | int(word, 16)
    return value << (128 - 16 * len(words)), 16 * len(words)


def parse_ip6_address(text: str) -> int:
    if "::" in text:
        try:
            return int(ipaddress.IPv6Address(text))
        except ValueError:
            raise ZoneLineError("invalid address") from None
    value, bits = parse_ip6_words(text)
    if bits != 128:
        raise ZoneLineError("an exclusion here is one address (eight words or :: notation)")
    return value


def parse_ip6_prefix(text: str) -> tuple[int, int]:
    """An ip6trie entry: `2001:db8::/32`, `2001:db8:1:2` (/64), `2001:db8:c000/36`, `::1`."""
    address, slash, prefix = text.partition("/")
    if "::" in address:
        value, bits = parse_ip6_address(address), 128
    else:
        value, bits = parse_ip6_words(address)
        if bits == 16 and not slash:
            raise ZoneLineError("a bare number is not an address")
    if slash:
        if not (prefix.isascii() and prefix.isdigit()) or int(prefix) > 128:
            raise ZoneLineError("invalid prefix length")
        bits = int(prefix)
    if value & ((1 << (128 - bits)) - 1):
        raise ZoneLineError("invalid range (non-zero host part)")
    return value, bits


# -- resolving --------------------------------------------------------------------------------

SHIFT = {4: 32, 6: 128}


class ZoneInterval(NamedTuple):
    """A run of addresses that answer the same A values (sorted, distinct)."""

    version: int
    first: int
    last: int
    values: tuple[str, ...]


@dataclass
class ResolvedZone:
    listings: list[Listing]
    # (version, listing index) → sorted, non-overlapping intervals packed as first << bits | last
    packed: dict[tuple[int, int], array[int] | list[int]]

    def ranges(self, version: int, listing: Listing) -> Iterator[tuple[int, int]]:
        try:
            index = self.listings.index(listing)
        except ValueError:
            return
        yield from _unpack(self.packed.get((version, index), ()), SHIFT[version])

    def lookup(self, version: int, address: int) -> list[Listing]:
        """What rbldnsd answers for one address (for tests and spot checks; O(k log n))."""
        shift = SHIFT[version]
        found = []
        for (v, index), packed in self.packed.items():
            at = bisect.bisect_right(packed, (address << shift) | ((1 << shift) - 1)) - 1
            if v == version and at >= 0 and packed[at] & ((1 << shift) - 1) >= address:
                found.append(self.listings[index])
        return sorted(found)

    def intervals(self) -> Iterator[ZoneInterval]:
        """Every listed address once, sorted by (version, first), with all its A values."""
        for version in (4, 6):
            streams = {
                index: _unpack(packed, SHIFT[version])
                for (v, index), packed in sorted(self.packed.items())
                if v == version
            }
            values = {index: self.listings[index].value for index in streams}
            yield from _overlay(version, streams, values)

    def count(self) -> int:
        return sum(len(packed) for packed in self.packed.values())


def resolve(parser: ZoneParser, lines: Iterable[str]) -> ResolvedZone:
    """Parse `lines` with `parser` and apply rbldnsd's precedence (see the module docstring)."""
    listings: dict[Listing, int] = {}
    groups: dict[tuple[int, int, int], array[int] | list[int]] = {}
    trivial = parser.dataset in (Dataset.IP4TSET, Dataset.IP6TSET)
    for entry in parser.parse(lines):
        if entry.listing is None:
            key = -1
        elif trivial:
            key = listings.setdefault(DEFAULT_LISTING, 0)
        else:
            key = listings.setdefault(entry.listing, len(listings))
        group = groups.get((entry.version, entry.level, key))
        if group is None:
            group = groups[(entry.version, entry.level, key)] = array("Q") if entry.version == 4 else []
        group.append(entry.first << SHIFT[entry.version] | entry.last)
    by_index = list(listings)
    if trivial and by_index:
        # Entries were read with the dataset's value as known so far; the first `:` line wins.
        by_index = [parser.dataset_listing]
    packed: dict[tuple[int, int], array[int] | list[int]] = {}
    for version in (4, 6):
        for index, pieces in _resolve_version(version, groups).items():
            packed[(version, index)] = pieces
    return ResolvedZone(by_index, packed)


def _resolve_version(
    version: int, groups: dict[tuple[int, int, int], array[int] | list[int]]
) -> dict[int, array[int] | list[int]]:
    shift = SHIFT[version]
    levels = sorted({level for v, level, _ in groups if v == version}, reverse=True)
    covered_above: array[int] | list[int] = []  # addresses answered by a more specific level
    results: dict[int, list[array[int] | list[int]]] = {}
    for level in levels:
        keys = [key for v, lv, key in groups if v == version and lv == level]
        unions = {}
        for key in keys:
            group = groups.pop((version, level, key))
            unions[key] = _pack(_coalesce(_unpack(_sorted(group), shift)), version)
            del group
        excluded = unions.get(-1, ())
        for key, union in unions.items():
            if key == -1:
                continue
            kept = _subtract(
                _subtract(_unpack(union, shift), _unpack(excluded, shift)), _unpack(covered_above, shift)
            )
            results.setdefault(key, []).append(_pack(kept, version))
        everything = heapq.merge(covered_above, *unions.values())
        # Kept packed (an array for IPv4): a list of 2 million ints would cost ~70 MB more.
        covered_above = _pack(_coalesce(_unpack(everything, shift)), version)
    return {
        key: _pack(_coalesce(_unpack(heapq.merge(*parts), shift)), version) for key, parts in results.items()
    }


def _sorted(group: array[int] | list[int]) -> array[int] | list[int]:
    # Feeds are often already sorted; checking is far cheaper than sorting 2 million integers.
    if all(group[i] <= group[i + 1] for i in range(len(group) - 1)):
        return group
    if isinstance(group, array):
        return array("Q", sorted(group))
    group.sort()
    return group


def _pack(intervals: Iterable[tuple[int, int]], version: int) -> array[int] | list[int]:
    shift = SHIFT[version]
    packed = (first << shift | last for first, last in intervals)
    return array("Q", packed) if version == 4 else list(packed)


def _unpack(packed: Iterable[int], shift: int) -> Iterator[tuple[int, int]]:
    mask = (1 << shift) - 1
    for item in packed:
        yield item >> shift, item & mask


def _coalesce(intervals: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Merge sorted intervals that overlap or touch."""
    current: tuple[int, int] | None = None
    for first, last in intervals:
        if current is None:
            current = (first, last)
        elif first <= current[1] + 1:
            if last > current[1]:
                current = (current[0], last)
        else:
            yield current
            current = (first, last)
    if current is not None:
        yield current


def _subtract(
    intervals: Iterable[tuple[int, int]], removed: Iterable[tuple[int, int]]
) -> Iterator[tuple[int, int]]:
    """Sorted, non-overlapping `intervals` minus sorted, non-overlapping `removed`."""
    holes = iter(removed)
    hole = next(holes, None)
    for first, last in intervals:
        while hole is not None and hole[1] < first:
            hole = next(holes, None)
        start = first
        while hole is not None and hole[0] <= last:
            if hole[0] > start:
                yield start, hole[0] - 1
            start = max(start, hole[1] + 1)
            if hole[1] > last:
                break
            hole = next(holes, None)
        if start <= last:
            yield start, last


def _overlay(
    version: int, streams: dict[int, Iterator[tuple[int, int]]], values: dict[int, str]
) -> Iterator[ZoneInterval]:
    """Combine k sorted, non-overlapping streams into one, each run with the values covering it."""
    heap: list[tuple[int, int, int]] = []
    for key, stream in streams.items():
        head = next(stream, None)
        if head is not None:
            heap.append((head[0], head[1], key))
    heapq.heapify(heap)
    active: dict[int, int] = {}  # key → last address of its current interval
    position = 0
    pending: ZoneInterval | None = None
    while heap or active:
        if active:
            stop = min(active.values()) + 1
            if heap and heap[0][0] < stop:
                stop = heap[0][0]
            run = ZoneInterval(version, position, stop - 1, tuple(sorted({values[k] for k in active})))
            if pending and pending.last + 1 == run.first and pending.values == run.values:
                pending = pending._replace(last=run.last)
            else:
                if pending:
                    yield pending
                pending = run
            position = stop
            for key in [k for k, last in active.items() if last < position]:
                del active[key]
                following = next(streams[key], None)
                if following:
                    heapq.heappush(heap, (following[0], following[1], key))
        else:
            position = heap[0][0]
        while heap and heap[0][0] == position:
            _, last, key = heapq.heappop(heap)
            active[key] = last
    if pending:
        yield pending


def render_txt(template: str, address: str, variables: dict[str, str] | None = None) -> str:
    """A TXT template as rbldnsd sends it: `$` is the address, `$$` a dollar, `$1`…`$9` variables."""
    variables = variables or {}
    out = []
    i = 0
    while i < len(template):
        ch = template[i]
        following = template[i + 1 : i + 2]
        if ch != "$":
            out.append(ch)
        elif following == "$":
            out.append("$")
            i += 1
        elif following.isdigit() and following in variables:
            out.append(variables[following])
            i += 1
        else:
            out.append(address)
        i += 1
    return "".join(out)
