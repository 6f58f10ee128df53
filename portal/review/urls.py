from django.urls import path

from portal.review import views

app_name = "staff"

urlpatterns = [
    path("", views.queue, name="home"),
]
