"""The IP block columns shared by allocations, requested blocks and exemptions."""

from __future__ import annotations

import ipaddress
from typing import Self

from django.db import models
from django.db.models import Q

from portal.lib.ipblocks import Network, bounds, supernet_firsts

# Stored blocks are CIDR blocks, and two CIDR blocks overlap only when one contains the other.
# So both conditions are bounded scans of the (family, first, last) index: rows that start
# inside the network, and rows that start where one of its supernets (at most 33 or 129)
# starts. The textbook `first <= last' AND last >= first'` reads every row that starts below
# the network: for an address high in the space, most of a million reputation events.


def covering_q(network: Network) -> Q:
    b = bounds(network)
    return Q(family=b.family, first__in=supernet_firsts(network), last__gte=b.last)


def overlapping_q(network: Network) -> Q:
    b = bounds(network)
    return Q(family=b.family, first__gte=b.first, first__lte=b.last) | covering_q(network)


class BlockQuerySet[M: models.Model](models.QuerySet[M]):
    def overlapping(self, network: Network) -> Self:
        return self.filter(overlapping_q(network))

    def covering(self, network: Network) -> Self:
        return self.filter(covering_q(network))


class IPBlock(models.Model):
    cidr = models.CharField(max_length=43)
    family = models.PositiveSmallIntegerField(editable=False)
    first = models.CharField(max_length=32, editable=False)
    last = models.CharField(max_length=32, editable=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.cidr

    def set_network(self, network: Network) -> None:
        b = bounds(network)
        self.cidr = network.with_prefixlen if network.num_addresses > 1 else str(network.network_address)
        self.family, self.first, self.last = b.family, b.first, b.last

    @property
    def network(self) -> Network:
        return ipaddress.ip_network(self.cidr)
