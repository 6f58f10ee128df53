from django.urls import path

from portal.unblock import views

app_name = "unblock"

urlpatterns = [
    path("", views.request_list, name="list"),
    path("new/", views.request_new, name="new"),
    path("<uuid:request_id>/", views.request_detail, name="detail"),
    path("<uuid:request_id>/edit/", views.request_edit, name="edit"),
    path("<uuid:request_id>/submit/", views.request_submit, name="submit"),
    path("<uuid:request_id>/withdraw/", views.request_withdraw, name="withdraw"),
    path("<uuid:request_id>/recheck/", views.request_recheck, name="recheck"),
    path("<uuid:request_id>/answer/", views.request_answer, name="answer"),
]
