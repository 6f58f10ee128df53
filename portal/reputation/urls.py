from django.urls import path

from portal.reputation import network_views, views

app_name = "reputation"

urlpatterns = [
    path("", views.index, name="index"),
    path("arf/", views.upload_arf, name="upload_arf"),
    path("notes/", views.add_note, name="add_note"),
    path("network/", network_views.network, name="network"),
    path("network/<slug:table>.csv", network_views.network_csv, name="network_csv"),
    path("tenants/<uuid:tenant_id>/", views.tenant_history, name="tenant"),
    path("addresses/<path:address>/", views.address_history, name="address"),
]
