from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
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

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        # allauth's own emails (verification, password reset) go through the outbox as well,
        # so that they are sent by the worker and survive a broker outage.
        from django.template.loader import render_to_string

        from .emails import queue_email_rendered

        subject = render_to_string(f"{template_prefix}_subject.txt", context)
        subject = self.format_email_subject(" ".join(subject.split()))
        text = render_to_string(f"{template_prefix}_message.txt", context, self.request)
        queue_email_rendered(template=template_prefix, to=[email], subject=subject, text=text)
