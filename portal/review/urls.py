from django.urls import path

from portal.review import audit_views, views

app_name = "staff"

urlpatterns = [
    path("", views.queue, name="home"),
    path("bulk/", views.bulk, name="bulk"),
    path("audit/", audit_views.audit_log, name="audit"),
    path("requests/<uuid:request_id>/", views.request_detail, name="request"),
    path("requests/<uuid:request_id>/approve/", views.approve, name="approve"),
    path("requests/<uuid:request_id>/deny/", views.deny, name="deny"),
    path("requests/<uuid:request_id>/ask/", views.request_info, name="ask"),
    path("requests/<uuid:request_id>/note/", views.add_note, name="note"),
    path("requests/<uuid:request_id>/assign/", views.assign, name="assign"),
    path("requests/<uuid:request_id>/recheck/", views.request_recheck, name="recheck"),
]
