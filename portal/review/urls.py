from django.urls import path

from portal.review import views

app_name = "staff"

urlpatterns = [
    path("", views.queue, name="home"),
    path("requests/<uuid:request_id>/", views.request_detail, name="request"),
    path("requests/<uuid:request_id>/recheck/", views.request_recheck, name="recheck"),
]
