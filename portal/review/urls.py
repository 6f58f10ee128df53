from django.urls import path

from portal.enforcement import views as enforcement_views
from portal.review import audit_views, views
from portal.telemetry import views as telemetry_views

app_name = "staff"

urlpatterns = [
    path("", views.queue, name="home"),
    path("bulk/", views.bulk, name="bulk"),
    path("audit/", audit_views.audit_log, name="audit"),
    path("exemptions/", enforcement_views.exemption_list, name="exemptions"),
    path(
        "exemptions/<uuid:exemption_id>/<str:event>/",
        enforcement_views.exemption_change,
        name="exemption_change",
    ),
    path("agents/", telemetry_views.agent_list, name="agents"),
    path("webhooks/", enforcement_views.endpoint_list, name="webhooks"),
    path("webhooks/<uuid:endpoint_id>/", enforcement_views.endpoint_detail, name="webhook"),
    path(
        "webhooks/<uuid:endpoint_id>/<str:action>/", enforcement_views.endpoint_action, name="webhook_action"
    ),
    path(
        "webhooks/<uuid:endpoint_id>/deliveries/<uuid:delivery_id>/redeliver/",
        enforcement_views.delivery_redeliver,
        name="redeliver",
    ),
    path("requests/<uuid:request_id>/", views.request_detail, name="request"),
    path("requests/<uuid:request_id>/approve/", views.approve, name="approve"),
    path("requests/<uuid:request_id>/deny/", views.deny, name="deny"),
    path("requests/<uuid:request_id>/ask/", views.request_info, name="ask"),
    path("requests/<uuid:request_id>/note/", views.add_note, name="note"),
    path("requests/<uuid:request_id>/assign/", views.assign, name="assign"),
    path("requests/<uuid:request_id>/recheck/", views.request_recheck, name="recheck"),
]
