from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from portal.accounts import api as accounts_api
from portal.accounts import views as accounts_views
from portal.core import views as core_views
from portal.reputation import api as reputation_api
from portal.unblock import api as unblock_api

api_v1 = [
    path("tenants/<str:external_id>", accounts_api.tenant_detail, name="tenant"),
    path("requests/", unblock_api.request_list, name="requests"),
    path("requests/<uuid:request_id>", unblock_api.request_detail, name="request"),
    path("requests/<uuid:request_id>/submit", unblock_api.request_submit, name="request-submit"),
    path("requests/<uuid:request_id>/withdraw", unblock_api.request_withdraw, name="request-withdraw"),
    path("requests/<uuid:request_id>/answer", unblock_api.request_answer, name="request-answer"),
    path("reputation/events", reputation_api.event_create, name="reputation-events"),
    path("reputation/arf", reputation_api.arf_create, name="reputation-arf"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
]

urlpatterns = [
    path("", accounts_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("", include("django.contrib.auth.urls")),
    path("requests/", include("portal.unblock.urls")),
    path("keys/", include("portal.accounts.urls")),
    path("review/", include("portal.review.urls")),
    path("reputation/", include("portal.reputation.urls")),
    path("api/v1/", include((api_v1, "api"))),
    path("healthz", core_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
