from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.encoding import force_str

from .forms import EMAIL_MAX_LENGTH
from .requestcontext import get_client_ip


class AccountAdapter(DefaultAccountAdapter):
    @property  # type: ignore[override]
    def error_messages(self) -> dict[str, Any]:
        # The lockout says whom to contact, read per request: the support address is a setting.
        from .ratelimit import login_lockout_message

        return {
            **DefaultAccountAdapter.error_messages,
            "too_many_login_attempts": login_lockout_message(),
        }

    def clean_email(self, email: str) -> str:
        # Sign-up, "Add email address" and the password reset: allauth's email field has no
        # length limit, so sign-up cut a longer address to the column's 254 characters (an
        # account under an address that is not the person's) and adding one failed on
        # PostgreSQL. Refused here with the message of the portal's own email fields.
        MaxLengthValidator(EMAIL_MAX_LENGTH)(email)
        return super().clean_email(email)

    def get_client_ip(self, request: HttpRequest) -> str:
        # The same address the code budgets and the audit trail use: X-Forwarded-For read
        # through PORTAL_TRUSTED_PROXY_COUNT proxies, never trusted further.
        return getattr(request, "client_ip", None) or get_client_ip(request)

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth counts failed logins per "key" (the address typed) and refuses the account
        # once the key's budget is spent, even with the right password: anyone could lock a
        # user out. Keyed on address *and* client IP, wrong passwords from elsewhere spend
        # only their own budget; the per-IP limits (settings.ACCOUNT_RATE_LIMITS) bound what
        # one address can try across accounts.
        login = credentials.get("email", credentials.get("username", "")).lower()
        return f"{login}:{self.get_client_ip(request)}"

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        from .services import audit_record

        login = str(credentials.get("email", credentials.get("username", "")))[:254]
        audit_record(action="account.login_failed", details={"email": login.lower()})

    def login(self, request: HttpRequest, user: Any) -> None:
        super().login(request, user)
        from .services import user_language_remember

        # The language this person reads the portal in, for the emails others send them: the
        # switcher's cookie is a choice; the browser's negotiated language only fills a blank.
        user_language_remember(
            user,
            translation.get_language(),
            chosen=settings.LANGUAGE_COOKIE_NAME in request.COOKIES,
        )

    def post_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> HttpResponse:
        response = super().post_login(request, user, **kwargs)
        # On a browser that never chose (no switcher cookie), the portal continues in the
        # language this person chose elsewhere, as Django's set_language would set it.
        if user.language and settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                user.language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        return response

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        # An invitation link clicked while logged out comes back here after login or sign-up.
        token = request.session.get("portal:invitation")
        if token:
            return f"/invitations/{token}/"
        # Licenses shared with an address that had no account yet (licensing.views.shares).
        share_token = request.session.get("licensing:share-token")
        if share_token:
            return f"/licenses/shared/{share_token}/"
        return super().get_login_redirect_url(request)

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        return self.get_login_redirect_url(request)

    def format_email_subject(self, subject: str) -> str:
        from .emails import email_subject

        return email_subject(force_str(subject))

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        # allauth's own emails (verification, password reset) go through the outbox as well,
        # so that they are sent by the worker and survive a broker outage. They name the portal
        # from settings (allauth's templates read current_site.name and .domain) and are framed
        # like the portal's own emails (account/email/base_message.txt), with an HTML part.
        from django.template.loader import render_to_string

        from .emails import queue_email_rendered, site_context

        context = {
            "email": email,
            **{key: self._on_site(value) for key, value in context.items()},
            **site_context(),
        }
        subject = self.format_email_subject(
            render_to_string(f"{template_prefix}_subject.txt", context)
        )
        message = f"{template_prefix}_message.txt"
        text = render_to_string(message, context, self.request)
        body = render_to_string(
            message,
            {**context, "account_email_frame": "account/email/message_body_only.txt"},
            self.request,
        )
        html = render_to_string("account/email/message.html", {**context, "body": body.strip()})
        queue_email_rendered(
            template=template_prefix, to=[email], subject=subject, text=text, html=html
        )

    def _on_site(self, value: Any) -> Any:
        """A link allauth built on the request's host (password_reset_url, activate_url...),
        on the portal's configured address instead, as every other email's links and the
        footer are: the portal may be reached under another name (an internal host, a
        proxy's), which the person reading the email may not reach."""
        request = self.request
        if not isinstance(value, str) or request is None or "://" not in value:
            return value
        # Either scheme: allauth forces https when ACCOUNT_DEFAULT_HTTP_PROTOCOL says so.
        link = urlsplit(value)
        if link.scheme not in ("http", "https") or link.netloc != request.get_host():
            return value
        return urlunsplit(
            urlsplit(settings.PORTAL_SITE_URL)._replace(
                path=link.path, query=link.query, fragment=link.fragment
            )
        )
