from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/dags/", permanent=False)),
    path("admin/", admin.site.urls),
    path("accounts/", include("dagstream_app.account_urls")),  # sign-in, as the README says
    path("", include("dagstream_app.urls")),
]
