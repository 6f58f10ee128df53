from __future__ import annotations

from uuid import UUID

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from portal.accounts.api_auth import CustomerScope, actor_of, api_key_of
from portal.accounts.models import Tenant
from portal.ops.api_fields import StrictPageSize
from portal.unblock.models import State, UnblockRequest
from portal.unblock.serializers import (
    ReasonSerializer,
    RequestDetailSerializer,
    RequestInputSerializer,
    RequestPageSerializer,
    RequestSerializer,
    TextSerializer,
)
from portal.workflows import requests as actions


class NewestFirst(StrictPageSize):
    ordering = ("-created_at", "-id")
    page_size = 50


def _tenant(request: Request) -> Tenant:
    tenant = api_key_of(request).tenant
    assert tenant is not None  # customer keys always have one (a database constraint)
    return tenant


def _get_request(request: Request, request_id: UUID) -> UnblockRequest:
    """The tenant's own request, or 404: other tenants' requests don't exist for this key."""
    queryset = UnblockRequest.objects.for_tenant(_tenant(request)).prefetch_related("blocks", "messages")
    return get_object_or_404(queryset.select_related("tenant"), pk=request_id)


@extend_schema(
    methods=["GET"],
    operation_id="requests_list",
    summary="List requests, newest first",
    parameters=[
        OpenApiParameter("state", enum=State.values, description="Only requests in this state."),
        OpenApiParameter("cursor", str, description="Opaque; follow the next and previous links."),
        OpenApiParameter("page_size", int, description=f"1 to {NewestFirst.max_page_size}; 50 by default."),
    ],
    responses=RequestPageSerializer,
)
@extend_schema(
    methods=["POST"],
    summary="File a request",
    request=RequestInputSerializer,
    responses={201: RequestDetailSerializer},
)
@api_view(["GET", "POST"])
@permission_classes([CustomerScope])
def request_list(request: Request) -> Response:
    """List your tenant's unblock requests, or file a new one (`submit: false` saves a draft)."""
    tenant = _tenant(request)
    if request.method == "GET":
        queryset = (
            UnblockRequest.objects.for_tenant(tenant)
            .select_related("tenant")
            .prefetch_related("blocks", "messages")
        )
        if (state := request.query_params.get("state")) is not None:
            # Empty too: the schema's enum has no "", and "all states" is leaving it out.
            if state not in State.values:
                raise serializers.ValidationError({"state": [f"Use one of: {', '.join(State.values)}."]})
            queryset = queryset.filter(state=state)
        paginator = NewestFirst()
        page = paginator.paginate_queryset(queryset, request)
        return paginator.get_paginated_response(RequestSerializer(page, many=True).data)
    serializer = RequestInputSerializer(data=request.data, context={"tenant": tenant})
    serializer.is_valid(raise_exception=True)
    data, submit = serializer.to_data()
    req = actions.save_request(tenant=tenant, actor=actor_of(request), data=data, submit=submit)
    return Response(
        RequestDetailSerializer(_get_request(request, req.id)).data, status=status.HTTP_201_CREATED
    )


@extend_schema(request=RequestInputSerializer, responses=RequestDetailSerializer)
@api_view(["GET", "PUT"])
@permission_classes([CustomerScope])
def request_detail(request: Request, request_id: UUID) -> Response:
    """Read a request with its check results, the reviewer's questions and the denial reason, or
    replace a draft's contents (PUT, optionally submitting it)."""
    req = _get_request(request, request_id)
    if request.method == "PUT":
        serializer = RequestInputSerializer(data=request.data, context={"tenant": req.tenant, "editing": req})
        serializer.is_valid(raise_exception=True)
        data, submit = serializer.to_data()
        actions.save_request(
            tenant=req.tenant, actor=actor_of(request), data=data, submit=submit, editing=req
        )
        req = _get_request(request, request_id)
    return Response(RequestDetailSerializer(req).data)


@extend_schema(summary="Submit a draft for review", request=None, responses=RequestDetailSerializer)
@api_view(["POST"])
@permission_classes([CustomerScope])
def request_submit(request: Request, request_id: UUID) -> Response:
    req = _get_request(request, request_id)
    actions.submit_request(req=req, actor=actor_of(request))
    return Response(RequestDetailSerializer(_get_request(request, request_id)).data)


@extend_schema(
    summary="Withdraw a draft or an open request", request=ReasonSerializer, responses=RequestDetailSerializer
)
@api_view(["POST"])
@permission_classes([CustomerScope])
def request_withdraw(request: Request, request_id: UUID) -> Response:
    req = _get_request(request, request_id)
    serializer = ReasonSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    actions.withdraw_request(req=req, actor=actor_of(request), reason=serializer.validated_data["reason"])
    return Response(RequestDetailSerializer(_get_request(request, request_id)).data)


@extend_schema(request=TextSerializer, responses=RequestDetailSerializer)
@api_view(["POST"])
@permission_classes([CustomerScope])
def request_answer(request: Request, request_id: UUID) -> Response:
    """Answer the reviewer's question on a request that needs information."""
    req = _get_request(request, request_id)
    serializer = TextSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    actions.answer_request(req=req, actor=actor_of(request), answer=serializer.validated_data["text"])
    return Response(RequestDetailSerializer(_get_request(request, request_id)).data)
