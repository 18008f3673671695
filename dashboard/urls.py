from django.contrib.auth import views as auth_views
from django.urls import include, path

from connections.proxy.views import proxy

from . import accounts, reauth

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/confirm/", reauth.confirm_password, name="reauth"),
    path("accounts/password/", accounts.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/set-password/<uidb64>/<token>/", accounts.SetPasswordView.as_view(), name="password_set"),
    # The egress proxy for applications (Bearer application keys; no session, no CSRF): docs/proxy.md.
    path("proxy/<slug:name>/<path:rest>", proxy, name="proxy"),
    path("proxy/<slug:name>/", proxy, name="proxy_root"),
    path("", include("connections.urls")),
]

handler400 = "dashboard.views.bad_request"
handler500 = "dashboard.views.server_error"
