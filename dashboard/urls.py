from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.test_list, name="tests"),
    path("tests/<uuid:test_id>/", views.test_detail, name="test-detail"),
]
