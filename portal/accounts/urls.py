from django.urls import path

from portal.accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.api_keys, name="api_keys"),
    path("<uuid:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
]
