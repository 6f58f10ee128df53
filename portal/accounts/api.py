from __future__ import annotations

import re

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from portal.accounts.api_auth import ProvisioningScope, actor_of
from portal.accounts.models import Tenant
from portal.accounts.serializers import TenantSerializer, TenantSpecSerializer
from portal.workflows.provisioning import provision_tenant

EXTERNAL_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,100}$")


@extend_schema(methods=["GET"], summary="Read a tenant", responses=TenantSerializer)
@extend_schema(
    methods=["PUT"],
    summary="Create or update a tenant",
    request=TenantSpecSerializer,
    responses={200: TenantSerializer, 201: TenantSerializer},
)
@api_view(["GET", "PUT"])
@permission_classes([ProvisioningScope])
def tenant_detail(request: Request, external_id: str) -> Response:
    """Read a tenant, or create/update it with its allocations and members (idempotent PUT)."""
    if request.method == "GET":
        tenant = get_object_or_404(Tenant, external_id=external_id)
        return Response(TenantSerializer(tenant).data)
    if not EXTERNAL_ID.match(external_id):
        raise serializers.ValidationError(
            {"external_id": ["Use 1 to 100 letters, digits or . _ : @ - for the tenant's external id."]}
        )
    spec_serializer = TenantSpecSerializer(data=request.data)
    spec_serializer.is_valid(raise_exception=True)
    result = provision_tenant(spec=spec_serializer.to_spec(external_id), actor=actor_of(request))
    return Response(
        TenantSerializer(result.tenant).data,
        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
    )
