"""Webhook endpoint management for the provider's automation (provisioning-scoped keys)."""

from __future__ import annotations

from uuid import UUID

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from portal.accounts.api_auth import ProvisioningScope, actor_of
from portal.enforcement import endpoints
from portal.enforcement.models import WebhookEndpoint
from portal.enforcement.serializers import DeliverySerializer, EndpointSerializer, RangeSerializer
from portal.enforcement.webhooks import redeliver


@extend_schema(
    request=EndpointSerializer, responses={200: EndpointSerializer(many=True), 201: EndpointSerializer}
)
@api_view(["GET", "POST"])
@permission_classes([ProvisioningScope])
def endpoint_list(request: Request) -> Response:
    if request.method == "GET":
        return Response(EndpointSerializer(WebhookEndpoint.objects.all(), many=True).data)
    serializer = EndpointSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    endpoint = endpoints.save_endpoint(
        WebhookEndpoint(**serializer.validated_data), actor=actor_of(request), created=True
    )
    return Response(EndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)


@extend_schema(request=EndpointSerializer, responses=EndpointSerializer)
@api_view(["GET", "PATCH", "DELETE"])
@permission_classes([ProvisioningScope])
def endpoint_detail(request: Request, endpoint_id: UUID) -> Response:
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    if request.method == "DELETE":
        endpoints.delete_endpoint(endpoint, actor=actor_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
    if request.method == "PATCH":
        serializer = EndpointSerializer(endpoint, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        for name, value in serializer.validated_data.items():
            setattr(endpoint, name, value)
        endpoints.save_endpoint(endpoint, actor=actor_of(request), created=False)
    return Response(EndpointSerializer(endpoint).data)


@extend_schema(request=None, responses=EndpointSerializer)
@api_view(["POST"])
@permission_classes([ProvisioningScope])
def endpoint_rotate(request: Request, endpoint_id: UUID) -> Response:
    """New secret; the old one keeps signing (both signatures sent) for WEBHOOK_SECRET_OVERLAP_HOURS."""
    endpoint = endpoints.rotate_secret(
        get_object_or_404(WebhookEndpoint, pk=endpoint_id), actor=actor_of(request)
    )
    return Response(EndpointSerializer(endpoint).data)


@extend_schema(request=None, responses={202: DeliverySerializer})
@api_view(["POST"])
@permission_classes([ProvisioningScope])
def endpoint_test(request: Request, endpoint_id: UUID) -> Response:
    delivery = endpoints.send_test_event(
        get_object_or_404(WebhookEndpoint, pk=endpoint_id), actor=actor_of(request)
    )
    return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(responses=DeliverySerializer(many=True))
@api_view(["GET"])
@permission_classes([ProvisioningScope])
def delivery_list(request: Request, endpoint_id: UUID) -> Response:
    """The latest 200 messages to this endpoint, each with its attempts."""
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    deliveries = endpoint.deliveries.prefetch_related("attempt_log")[:200]
    return Response(DeliverySerializer(deliveries, many=True).data)


@extend_schema(request=None, responses={202: DeliverySerializer})
@api_view(["POST"])
@permission_classes([ProvisioningScope])
def delivery_redeliver(request: Request, endpoint_id: UUID, delivery_id: UUID) -> Response:
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    delivery = get_object_or_404(endpoint.deliveries, uuid=delivery_id)
    redeliver([delivery], actor=actor_of(request))
    delivery.refresh_from_db()
    return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(request=RangeSerializer, responses={202: None})
@api_view(["POST"])
@permission_classes([ProvisioningScope])
def redeliver_failed(request: Request, endpoint_id: UUID) -> Response:
    """Queue again every failed message created in [since, until]."""
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    serializer = RangeSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    count = endpoints.redeliver_range(
        endpoint,
        since=serializer.validated_data["since"],
        until=serializer.validated_data["until"],
        actor=actor_of(request),
    )
    return Response({"queued": count}, status=status.HTTP_202_ACCEPTED)
