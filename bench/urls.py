from django.urls import path

from flakyboard.urls import urlpatterns as app_urlpatterns

from .floor import store_raw_body

urlpatterns = [path("bench/floor/", store_raw_body), *app_urlpatterns]
