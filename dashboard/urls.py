from django.contrib.auth import views as auth_views
from django.urls import include, path

from connections.proxy.views import proxy

from . import accounts, metrics, reauth, sso, twofactor

urlpatterns = [
    # The egress proxy for applications (Bearer application keys; no session, no CSRF): docs/proxy.md.
    # First: connections/proxy/edge.py resolves every /proxy/ request, and nothing else starts so.
    path("proxy/<slug:name>/<path:rest>", proxy, name="proxy"),
    path("proxy/<slug:name>/", proxy, name="proxy_root"),
    path("accounts/login/", accounts.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    # Single sign-on (dashboard/sso.py): off (404) unless OIDC_RP_CLIENT_ID is set.
    path("oidc/authenticate/", sso.SsoStart.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", sso.SsoCallback.as_view(), name="oidc_authentication_callback"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/confirm/", reauth.confirm_password, name="reauth"),
    path("accounts/two-factor/", twofactor.two_factor, name="two_factor"),
    path("accounts/security/", twofactor.security, name="security"),
    path("accounts/security/recovery-codes/", twofactor.recovery_codes, name="security_recovery_codes"),
    path("accounts/security/remove/", twofactor.remove, name="security_remove"),
    path("accounts/password/", accounts.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/set-password/<uidb64>/<token>/", accounts.SetPasswordView.as_view(), name="password_set"),
    path("metrics", metrics.metrics, name="metrics"),
    path("", include("connections.urls")),
]

handler400 = "dashboard.views.bad_request"
handler500 = "dashboard.views.server_error"
