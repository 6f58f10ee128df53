from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from portal.accounts import api as accounts_api
from portal.accounts import sso_views, two_factor_views
from portal.enforcement import api as enforcement_api
from portal.enforcement import customer_views as customer_exemptions
from portal.enforcement import feeds
from portal.ops import views as ops_views
from portal.reputation import api as reputation_api
from portal.review import api as review_api
from portal.telemetry import api as telemetry_api
from portal.unblock import api as unblock_api
from portal.unblock import views as unblock_views

api_v1 = [
    path("tenants/<str:external_id>", accounts_api.tenant_detail, name="tenant"),
    path("requests/", unblock_api.request_list, name="requests"),
    path("requests/<uuid:request_id>", unblock_api.request_detail, name="request"),
    path("requests/<uuid:request_id>/submit", unblock_api.request_submit, name="request-submit"),
    path("requests/<uuid:request_id>/withdraw", unblock_api.request_withdraw, name="request-withdraw"),
    path("requests/<uuid:request_id>/answer", unblock_api.request_answer, name="request-answer"),
    path("review/requests", review_api.request_list, name="review-requests"),
    path("review/requests/<uuid:request_id>", review_api.request_detail, name="review-request"),
    path("review/requests/<uuid:request_id>/approve", review_api.request_approve, name="review-approve"),
    path("review/requests/<uuid:request_id>/deny", review_api.request_deny, name="review-deny"),
    path("review/requests/<uuid:request_id>/request-info", review_api.request_info, name="review-ask"),
    path("review/requests/<uuid:request_id>/assign", review_api.request_assign, name="review-assign"),
    path("reputation/events", reputation_api.event_create, name="reputation-events"),
    path("reputation/arf", reputation_api.arf_create, name="reputation-arf"),
    path("feeds/exemptions.txt", feeds.exemptions_txt, name="feed-txt"),
    path("feeds/exemptions.json", feeds.exemptions_json, name="feed-json"),
    path("feeds/changes", feeds.changes, name="feed-changes"),
    path("telemetry/smtp", telemetry_api.smtp_report, name="telemetry-smtp"),
    path("webhooks/endpoints", enforcement_api.endpoint_list, name="webhook-endpoints"),
    path("webhooks/endpoints/<uuid:endpoint_id>", enforcement_api.endpoint_detail, name="webhook-endpoint"),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>/rotate-secret",
        enforcement_api.endpoint_rotate,
        name="webhook-rotate",
    ),
    path("webhooks/endpoints/<uuid:endpoint_id>/test", enforcement_api.endpoint_test, name="webhook-test"),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>/deliveries",
        enforcement_api.delivery_list,
        name="webhook-deliveries",
    ),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>/deliveries/<uuid:delivery_id>/redeliver",
        enforcement_api.delivery_redeliver,
        name="webhook-redeliver",
    ),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>/redeliver-failed",
        enforcement_api.redeliver_failed,
        name="webhook-redeliver-failed",
    ),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
]

urlpatterns = [
    path("", unblock_views.home, name="home"),
    path(
        "login/",
        # LoginView puts the request's host in `site_name`; keep the portal's name in the header.
        two_factor_views.SignInView.as_view(extra_context={"site_name": settings.SITE_NAME}),
        name="login",
    ),
    path("login/two-factor/", two_factor_views.verify, name="two_factor_verify"),
    path("sso/<str:key>/start/", sso_views.start, name="sso_start"),
    path("sso/customers/callback/", sso_views.callback, {"key": "customers"}, name="sso_callback_customers"),
    path("sso/staff/callback/", sso_views.callback, {"key": "staff"}, name="sso_callback_staff"),
    # Before django.contrib.auth's: also ends the session at the identity provider.
    path("logout/", sso_views.logout, name="logout"),
    path("", include("django.contrib.auth.urls")),
    path("requests/", include("portal.unblock.urls")),
    path("keys/", include("portal.accounts.urls")),
    path("exemptions/", customer_exemptions.exemption_list, name="exemptions"),
    path("exemptions/<uuid:exemption_id>/renew/", customer_exemptions.renew, name="exemption_renew"),
    path(
        "exemptions/<uuid:exemption_id>/reinstate/",
        customer_exemptions.ask_reinstatement,
        name="exemption_reinstate",
    ),
    path("account/two-factor/", two_factor_views.manage, name="two_factor"),
    path("account/two-factor/setup/", two_factor_views.setup, name="two_factor_setup"),
    path("account/two-factor/confirm/", two_factor_views.confirm, name="two_factor_confirm"),
    path("account/two-factor/disable/", two_factor_views.disable, name="two_factor_disable"),
    path(
        "account/two-factor/recovery-codes/",
        two_factor_views.recovery_codes,
        name="two_factor_recovery_codes",
    ),
    path("review/", include("portal.review.urls")),
    path("reputation/", include("portal.reputation.urls")),
    path("api/v1/", include((api_v1, "api"))),
    path("healthz", ops_views.healthz, name="healthz"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
]
