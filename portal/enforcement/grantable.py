"""Which addresses may be requested and granted: held by the tenant now, of a size one request
may name, and not already covered by an exemption in force or another open request.

It lives with exemptions because it reads them; the web form, the API and the approval step all
ask it, so a request that passed the form can still be refused at approval if things changed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from portal.accounts.models import Allocation, Tenant
from portal.enforcement.models import Exemption
from portal.lib.ipblocks import BlockError, Network, parse_block
from portal.unblock.models import RequestedBlock, UnblockRequest


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
    if network.prefixlen >= limit:
        return ""
    too_large = (
        f"{network} is too large: one request may name blocks up to /{limit} for IPv{network.version}."
    )
    most = settings.MAX_ADDRESSES_PER_REQUEST
    parts = 2 ** (limit - network.prefixlen)
    if parts <= most:
        # Advice the customer can paste back: the exact blocks, which fit in one request.
        blocks = ", ".join(str(block) for block in network.subnets(new_prefix=limit))
        return f"{too_large} Enter it as these {parts} blocks instead: {blocks}."
    # More blocks than a request takes: splitting can't work, so name what does.
    return (
        f"{too_large} It would take {parts:,} blocks of /{limit}, and a request takes at most {most} "
        f"entries. List only the addresses that send mail, one per line (a mail server usually "
        f"needs one or two), or the /{limit} blocks they are in."
    )


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
