"""The reviewer API: the queue and the decisions, for reviewer keys.

A reviewer key acts as the staff user it was issued to (ReviewerScope refuses keys without one),
and every decision goes through portal.workflows.decisions exactly as the browser's do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from portal.accounts.api_auth import ReviewerScope, api_key_of
from portal.ops.api_fields import StrictPageSize
from portal.review.forms import QueueFilterForm, staff_users
from portal.review.models import Approval
from portal.review.serializers import (
    ApprovalOutcomeSerializer,
    ApproveSerializer,
    AssignSerializer,
    DenySerializer,
    QuestionSerializer,
    QueueItemSerializer,
    QueuePageSerializer,
    ReviewRequestSerializer,
)
from portal.unblock.models import OPEN_STATES, UnblockRequest
from portal.vetting.findings import CHECK_TITLES
from portal.vetting.models import RiskBand
from portal.workflows import decisions

TAGS = ["review"]
REFUSED = {
    403: OpenApiResponse(
        description="Refused for this person: separation of duties, four-eyes or the approver role."
    ),
    409: OpenApiResponse(description="The request changed state first (another decision won)."),
}


class OldestFirst(StrictPageSize):
    # submitted_at never changes once a request is open, so the cursor stays valid.
    ordering = ("submitted_at", "id")
    page_size = 50


def _user(request: Request) -> User:
    user = api_key_of(request).created_by
    assert user is not None  # ReviewerScope refuses reviewer keys without a user
    return user


def _get_request(request_id: UUID) -> UnblockRequest:
    queryset = UnblockRequest.objects.select_related("tenant", "assignee").prefetch_related(
        "blocks", "messages", Prefetch("approvals", Approval.objects.select_related("approver"))
    )
    return get_object_or_404(queryset, pk=request_id)


def _decide[S: serializers.Serializer[Any], T](
    request: Request, request_id: UUID, body: type[S], step: Callable[[UnblockRequest, User, S], T]
) -> T:
    """Validate the body and take the decision as the key's user.

    Refusals (403), lost races (409) and Django's ValidationError (400) are mapped to HTTP by the
    exception handler (portal/ops/api_errors.py).
    """
    req = _get_request(request_id)
    serializer = body(data=request.data, context={"req": req})
    serializer.is_valid(raise_exception=True)
    return step(req, _user(request), serializer)


def _request_as_it_is_now(request_id: UUID) -> Response:
    return Response(ReviewRequestSerializer(_get_request(request_id)).data)


def _filter_form(request: Request) -> QueueFilterForm:
    data = request.query_params.copy()
    assignee = data.get("assignee", "")
    if assignee and assignee not in ("mine", "unassigned"):
        user = staff_users().filter(email__iexact=assignee).first()
        if user is None:
            raise exceptions.ValidationError(
                {"assignee": [f"No active reviewer, approver or admin has the email {assignee}."]}
            )
        data["assignee"] = str(user.pk)
    # The form's checkbox reads any text as "on"; the API documents a boolean and holds to it.
    if data.get("overdue", "false") not in ("true", "false"):
        raise exceptions.ValidationError({"overdue": ["Give overdue=true or overdue=false."]})
    form = QueueFilterForm(data)
    if not form.is_valid():
        raise exceptions.ValidationError(
            {name: [str(e) for e in errors] for name, errors in form.errors.items()}
        )
    return form


@extend_schema(
    operation_id="review_requests_list",
    summary="List open requests of every tenant, oldest first",
    tags=TAGS,
    parameters=[
        OpenApiParameter("state", enum=[s.value for s in OPEN_STATES], description="Only this open state."),
        OpenApiParameter("band", enum=RiskBand.values, description="Only this risk band."),
        OpenApiParameter("overdue", bool, description="Only requests waiting longer than the review target."),
        OpenApiParameter(
            "assignee", str, description='A staff email, "mine" (the key\'s user) or "unassigned".'
        ),
        OpenApiParameter("failing", enum=list(CHECK_TITLES), description="Only requests failing this check."),
        OpenApiParameter("tenant", str, description="A tenant's external id."),
        OpenApiParameter(
            "q", str, description="Tenant name or external id, an address or block, or a sending domain."
        ),
        OpenApiParameter("cursor", str, description="Opaque; follow the next and previous links."),
        OpenApiParameter("page_size", int, description=f"1 to {OldestFirst.max_page_size}; 50 by default."),
    ],
    responses=QueuePageSerializer,
)
@api_view(["GET"])
@permission_classes([ReviewerScope])
def request_list(request: Request) -> Response:
    reqs = (
        _filter_form(request)
        .apply(UnblockRequest.objects.open(), user=_user(request))
        .select_related("tenant", "assignee")
        .prefetch_related("blocks")
    )
    paginator = OldestFirst()
    page = paginator.paginate_queryset(reqs, request)
    return paginator.get_paginated_response(QueueItemSerializer(page, many=True).data)


@extend_schema(
    operation_id="review_requests_retrieve",
    summary="Read a request with its checks, risk breakdown, approvals and internal notes",
    tags=TAGS,
    responses=ReviewRequestSerializer,
)
@api_view(["GET"])
@permission_classes([ReviewerScope])
def request_detail(request: Request, request_id: UUID) -> Response:
    return _request_as_it_is_now(request_id)


@extend_schema(
    operation_id="review_requests_approve",
    summary="Approve (all or some addresses); under four-eyes the first approval waits for a second",
    tags=TAGS,
    request=ApproveSerializer,
    responses={200: ApprovalOutcomeSerializer, **REFUSED},
)
@api_view(["POST"])
@permission_classes([ReviewerScope])
def request_approve(request: Request, request_id: UUID) -> Response:
    outcome = _decide(
        request,
        request_id,
        ApproveSerializer,
        lambda req, user, body: decisions.approve(
            req=req,
            user=user,
            cidrs=body.validated_data.get("cidrs"),
            expires_at=body.chosen_expiry(),
            note=body.validated_data["note"],
        ),
    )
    result = {
        "final": outcome.final,
        "waiting_for": outcome.waiting_for,
        "exemptions": outcome.exemptions,
        "request": _get_request(request_id),
    }
    return Response(ApprovalOutcomeSerializer(result).data)


@extend_schema(
    operation_id="review_requests_deny",
    summary="Deny, with the reason the customer will read",
    tags=TAGS,
    request=DenySerializer,
    responses={200: ReviewRequestSerializer, **REFUSED},
)
@api_view(["POST"])
@permission_classes([ReviewerScope])
def request_deny(request: Request, request_id: UUID) -> Response:
    _decide(
        request,
        request_id,
        DenySerializer,
        lambda req, user, body: decisions.deny(req=req, user=user, reason=body.validated_data["reason"]),
    )
    return _request_as_it_is_now(request_id)


@extend_schema(
    operation_id="review_requests_request_info",
    summary="Ask the customer a question; the request waits in needs_info until they answer",
    tags=TAGS,
    request=QuestionSerializer,
    responses={200: ReviewRequestSerializer, **REFUSED},
)
@api_view(["POST"])
@permission_classes([ReviewerScope])
def request_info(request: Request, request_id: UUID) -> Response:
    _decide(
        request,
        request_id,
        QuestionSerializer,
        lambda req, user, body: decisions.request_info(
            req=req, user=user, question=body.validated_data["question"]
        ),
    )
    return _request_as_it_is_now(request_id)


@extend_schema(
    operation_id="review_requests_assign",
    summary="Assign to a staff member, or release (assignee null)",
    tags=TAGS,
    request=AssignSerializer,
    responses={200: ReviewRequestSerializer, **REFUSED},
)
@api_view(["POST"])
@permission_classes([ReviewerScope])
def request_assign(request: Request, request_id: UUID) -> Response:
    _decide(
        request,
        request_id,
        AssignSerializer,
        lambda req, user, body: decisions.assign(
            req=req, user=user, assignee=body.validated_data["assignee"]
        ),
    )
    return _request_as_it_is_now(request_id)
