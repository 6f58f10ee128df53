"""The rules an unblock request must follow, shared by the web form and the API."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from portal.accounts.models import Allocation, Tenant
from portal.enforcement.models import Exemption
from portal.lib.ipblocks import BlockError, Network, parse_block
from portal.unblock.models import RequestedBlock, UnblockRequest, UseCase

TEXT_LIMIT = 4000
MAX_DOMAINS = 20
MAX_DAILY_VOLUME = 10_000_000

BULK_REFUSAL = (
    "Bulk and marketing mail is not accepted for direct sending on port 25. Send it through an "
    "email service provider that handles consent, unsubscribes and sender reputation, on port "
    "587 or its HTTP API."
)

_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass
class RequestData:
    """What a customer fills in. Blank values are allowed in drafts, not in a submission."""

    addresses: list[str] = field(default_factory=list)
    use_case: str = ""
    justification: str = ""
    mail_software: str = ""
    sending_domains: list[str] = field(default_factory=list)
    expected_daily_volume: int | None = None
    bounce_handling: str = ""
    abuse_contact: str = ""
    accept_aup: bool = False


def split_entries(text: str) -> list[str]:
    """Split what a person pasted: one entry per line, or separated by commas or spaces."""
    return [item for item in re.split(r"[\s,;]+", text) if item]


def clean_addresses(
    entries: list[str], *, tenant: Tenant, editing: UnblockRequest | None = None, renewing: Any = None
) -> list[Network]:
    """Parse and check every address; raise one ValidationError listing every problem.

    `renewing` is the id of the exemption a renewal extends: it doesn't count as a conflict.
    """
    if renewing is None and editing is not None:
        renewing = editing.renewal_of_id
    if len(entries) > settings.MAX_ADDRESSES_PER_REQUEST:
        raise ValidationError(
            f"Enter at most {settings.MAX_ADDRESSES_PER_REQUEST} addresses or blocks per request "
            f"(you entered {len(entries)}); file another request for the rest."
        )
    errors: list[str] = []
    networks: list[Network] = []
    for entry in entries:
        try:
            network = parse_block(entry)
        except BlockError as exc:
            errors.append(str(exc))
            continue
        problem = _size_problem(network) or _overlap_within(network, networks)
        problem = problem or _ownership_problem(network, tenant)
        problem = problem or _conflict_problem(network, tenant, editing, renewing)
        if problem:
            errors.append(problem)
        else:
            networks.append(network)
    if errors:
        raise ValidationError(errors)
    return networks


def ensure_still_grantable(networks: list[Network], *, req: UnblockRequest) -> None:
    """At approval: each address must still be the tenant's and not covered by another exemption
    or open request (the size and count limits applied when it was filed)."""
    problems = [
        problem
        for network in networks
        if (
            problem := _ownership_problem(network, req.tenant)
            or _conflict_problem(network, req.tenant, req, req.renewal_of_id)
        )
    ]
    if problems:
        raise ValidationError(problems)


def _size_problem(network: Network) -> str:
    limit = settings.MAX_BLOCK_V4 if network.version == 4 else settings.MAX_BLOCK_V6
    if network.prefixlen < limit:
        return (
            f"{network} is too large: one request may name blocks up to /{limit} for "
            f"IPv{network.version}. Split it into /{limit} blocks or list the addresses that send mail."
        )
    return ""


def _overlap_within(network: Network, earlier: list[Network]) -> str:
    for other in earlier:
        if network.version == other.version and network.overlaps(other):
            return f"{_show(network)} overlaps {_show(other)}, which is already in this list; enter it once."
    return ""


def _ownership_problem(network: Network, tenant: Tenant) -> str:
    if Allocation.objects.filter(tenant=tenant).active().covering(network).exists():
        return ""
    released = (
        Allocation.objects.filter(tenant=tenant, released_at__isnull=False)
        .covering(network)
        .order_by("-released_at")
        .first()
    )
    if released is not None and released.released_at is not None:
        return (
            f"{_show(network)} was in {released.cidr}, which {tenant.name} released on "
            f"{released.released_at:%Y-%m-%d}. Enter an address from a block you hold now."
        )
    return (
        f"{_show(network)} is not inside any block allocated to {tenant.name}. "
        "Enter an address or block from your account's IP allocations."
    )


def _conflict_problem(network: Network, tenant: Tenant, editing: UnblockRequest | None, renewing: Any) -> str:
    exemptions = Exemption.objects.in_force().overlapping(network)
    if renewing is not None:
        exemptions = exemptions.exclude(pk=renewing)
    exemption = exemptions.first()
    if exemption is not None:
        if exemption.tenant_id == tenant.pk:
            return (
                f"{_show(network)} is already covered by your {exemption.get_state_display().lower()} "
                f"exemption for {exemption.cidr}; no new request is needed."
            )
        return f"{_show(network)} is already covered by an exemption; contact support."
    blocks = RequestedBlock.objects.of_open_requests().overlapping(network).select_related("request")
    if editing is not None:
        blocks = blocks.exclude(request=editing)
    block = blocks.first()
    if block is not None:
        if block.request.tenant_id == tenant.pk:
            return (
                f"{_show(network)} is already in open request {block.request.reference} "
                f"({block.request.get_state_display().lower()}); wait for its decision or withdraw it first."
            )
        return f"{_show(network)} is already in another open request; contact support."
    return ""


def _show(network: Network) -> str:
    return str(network.network_address) if network.num_addresses == 1 else str(network)


def clean_domains(entries: list[str]) -> list[str]:
    if len(entries) > MAX_DOMAINS:
        raise ValidationError(f"Enter at most {MAX_DOMAINS} sending domains (you entered {len(entries)}).")
    domains: list[str] = []
    errors: list[str] = []
    for entry in entries:
        candidate = entry.strip().rstrip(".").lower()
        try:
            ascii_name = candidate.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_name = ""
        labels = ascii_name.split(".")
        if len(labels) < 2 or len(ascii_name) > 253 or not all(_DOMAIN_LABEL.match(x) for x in labels):
            errors.append(
                f"“{entry}” is not a domain name. Enter the domain in your From: addresses, e.g. example.com."
            )
        elif ascii_name not in domains:
            domains.append(ascii_name)
    if errors:
        raise ValidationError(errors)
    return domains


def clean_use_case(value: str) -> str:
    if value == UseCase.BULK_MARKETING:
        raise ValidationError(BULK_REFUSAL)
    return value


def clean_text(value: str, label: str) -> str:
    value = value.strip()
    if len(value) > TEXT_LIMIT:
        raise ValidationError(
            f"{label} is {len(value)} characters long; shorten it to {TEXT_LIMIT} or fewer."
        )
    return value


def clean_volume(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= MAX_DAILY_VOLUME:
        raise ValidationError(
            f"Enter the expected messages per day as a number from 1 to {MAX_DAILY_VOLUME:,}."
        )
    return value


def clean_abuse_contact(value: str) -> str:
    value = value.strip()
    if value:
        EmailValidator(
            message="Enter an email address where abuse reports reach you, e.g. abuse@example.com."
        )(value)
    return value


REQUIRED_FOR_SUBMIT = {
    "addresses": "Enter at least one address or block.",
    "use_case": "Choose what the mail server is for.",
    "justification": "Explain why port 587 or a relay service won't do.",
    "mail_software": "Name the mail server software, e.g. Postfix 3.8.",
    "sending_domains": "Enter at least one domain you send mail from.",
    "expected_daily_volume": "Enter how many messages a day you expect to send.",
    "bounce_handling": "Describe how you handle bounces and complaints.",
    "abuse_contact": "Enter an email address where abuse reports reach you.",
    "accept_aup": "Accept the acceptable-use policy to submit the request.",
}


def missing_for_submit(data: RequestData) -> dict[str, str]:
    return {name: message for name, message in REQUIRED_FOR_SUBMIT.items() if not getattr(data, name)}
