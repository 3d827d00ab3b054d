"""Sign-in and sign-out pages for people who are not staff, in the dashboard's look.

A host without its own sign-in adds one line to its ``urls.py``::

    path("accounts/", include("dagstream_app.account_urls")),

That serves Django's default ``LOGIN_URL`` (``/accounts/login/``) and names the
routes ``login`` and ``logout``, as ``django.contrib.auth.urls`` does. A host
that has sign-in already leaves this out (check ``dagstream_app.W003`` says
whether ``LOGIN_URL`` resolves).
"""

from __future__ import annotations

from typing import Any

from django.conf import global_settings, settings
from django.contrib.auth import views as auth_views
from django.urls import path, reverse

from dagstream_app.conf import config


class LoginView(auth_views.LoginView):
    """Django's sign-in, rendered in ``DAGSTREAM["BASE_TEMPLATE"]`` like the dashboard."""

    template_name = "dagstream_app/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["dagstream_base_template"] = config().base_template
        return context

    def get_default_redirect_url(self) -> str:
        # Django's default LOGIN_REDIRECT_URL (/accounts/profile/) is a 404 in a
        # fresh project: go to the runs unless the host chose somewhere.
        if settings.LOGIN_REDIRECT_URL == global_settings.LOGIN_REDIRECT_URL:
            return reverse("dagstream:dag_list")
        return super().get_default_redirect_url()


class LogoutView(auth_views.LogoutView):
    """Django's sign-out (POST only); then back to the sign-in page by default."""

    def get_default_redirect_url(self) -> str:
        if not settings.LOGOUT_REDIRECT_URL:
            return reverse("login")
        return super().get_default_redirect_url()


urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
]
