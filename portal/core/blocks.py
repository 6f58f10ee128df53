"""The IP block columns shared by allocations, requested blocks and exemptions."""

from __future__ import annotations

import ipaddress
from typing import Self

from django.db import models

from portal.lib.ipblocks import Network, bounds


class BlockQuerySet[M: models.Model](models.QuerySet[M]):
    def overlapping(self, network: Network) -> Self:
        b = bounds(network)
        return self.filter(family=b.family, first__lte=b.last, last__gte=b.first)

    def covering(self, network: Network) -> Self:
        b = bounds(network)
        return self.filter(family=b.family, first__lte=b.first, last__gte=b.last)


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
