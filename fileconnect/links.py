"""Short-lived download links, signed with Django's signing, bound to a user and a file.

The token carries the user, the file and the basis the link was made under (a license or a
serial number). Entitlement is checked again when the link is used: the token only proves the
portal offered this user this file a few minutes ago.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core import signing
from django.urls import reverse

LINK_LIFETIME = timedelta(minutes=10)
_SALT = "fileconnect.download-link"


@dataclass(frozen=True)
class LinkClaims:
    user_id: int
    file_id: int
    basis: str  # "license:<uuid>" or "serial:<id>", see selectors.Basis.ref


class LinkRefused(Exception):
    """A link that cannot be used; `claims` is set when its signature is good (expired, other
    user) so that a fresh link can be made under the same basis."""

    EXPIRED = "expired"
    INVALID = "invalid"
    OTHER_USER = "other_user"

    def __init__(self, reason: str, claims: LinkClaims | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.claims = claims


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_SALT)


def download_token(*, user_id: int, file_id: int, basis: str) -> str:
    return _signer().sign_object({"u": user_id, "f": file_id, "b": basis})


def download_url(*, user_id: int, file_id: int, basis: str) -> str:
    """The URL of a link valid for LINK_LIFETIME."""
    token = download_token(user_id=user_id, file_id=file_id, basis=basis)
    return reverse("fileconnect-download", args=[file_id, token])


def _claims(payload: Any) -> LinkClaims:
    try:
        return LinkClaims(
            user_id=int(payload["u"]), file_id=int(payload["f"]), basis=str(payload["b"])
        )
    except (TypeError, KeyError, ValueError) as exc:
        raise LinkRefused(LinkRefused.INVALID) from exc


def link_claims(*, token: str, file_id: int, user_id: int) -> LinkClaims:
    """The claims of a link for this file and user, or LinkRefused saying why not."""
    try:
        claims = _claims(_signer().unsign_object(token, max_age=LINK_LIFETIME))
    except signing.SignatureExpired as exc:
        # The signature is good, only old: the claims can be trusted to make a fresh link.
        claims = _claims(_signer().unsign_object(token))
        _check_binding(claims, file_id=file_id, user_id=user_id)
        raise LinkRefused(LinkRefused.EXPIRED, claims) from exc
    except (signing.BadSignature, ValueError, UnicodeError) as exc:
        raise LinkRefused(LinkRefused.INVALID) from exc
    _check_binding(claims, file_id=file_id, user_id=user_id)
    return claims


def _check_binding(claims: LinkClaims, *, file_id: int, user_id: int) -> None:
    if claims.file_id != file_id:
        raise LinkRefused(LinkRefused.INVALID)
    if claims.user_id != user_id:
        raise LinkRefused(LinkRefused.OTHER_USER)
