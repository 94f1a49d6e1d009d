"""One helper renders every email from its subject/text/HTML template trio and queues it.

The message is written to the outbox in the caller's transaction and handed to Celery only after
commit, so an email never announces something that was rolled back. The hand-off may fail (the
broker is down) without failing the request that committed: the periodic relay sends what was
not handed over (portal.services.outbound_email_send has the delivery guarantee).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import formataddr, parseaddr
from functools import partial
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.template import Context, Engine
from django.template.loader import get_template
from django.utils import timezone, translation

from .models import OutboundEmail
from .rows import rows_insert


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str = "application/octet-stream"


@dataclass(frozen=True)
class AttachmentRef:
    """An attachment the outbox row names instead of holding: built when the email is sent.

    For large attachments made from committed rows (a conversion's 10,000 license files): the
    transaction that queues the email writes a few bytes instead of megabytes, and the files are
    built by the sender, from what committed. `source` is a name registered with
    attachment_source_register, `ref` what that source builds from (a primary key).
    """

    filename: str
    source: str
    ref: str
    mimetype: str = "application/octet-stream"


# Builds an attachment's content from its ref; raises AttachmentUnavailable when it cannot.
AttachmentSource = Callable[[str], bytes]

# Writes the unsaved outbox rows of an email queued with queue_email_later, from its spec.
Composer = Callable[[dict[str, Any]], list[OutboundEmail]]

_COMPOSERS: dict[str, Composer] = {}


def composer_register(name: str, composer: Composer) -> None:
    """Lets queue_email_later name emails `composer` writes (apps call it from
    AppConfig.ready, so the portal imports no domain app)."""
    _COMPOSERS[name] = composer


def composer_for(spec: dict[str, Any]) -> Composer:
    """The composer a queued spec names; KeyError for one no app registered."""
    return _COMPOSERS[spec["composer"]]


_ATTACHMENT_SOURCES: dict[str, AttachmentSource] = {}


class AttachmentUnavailable(Exception):
    """An attachment reference that cannot be built: unknown source, or what it names is gone.

    deliver raises it before anything is sent, so the outbox records it on the row (last_error)
    and retries with backoff like any failed send, then marks the row failed.
    """


def attachment_source_register(name: str, source: AttachmentSource) -> None:
    """Lets outbox rows name attachments built by `source` (apps call it from AppConfig.ready,
    so the portal imports no domain app)."""
    _ATTACHMENT_SOURCES[name] = source


def attachment_content(item: dict[str, str]) -> bytes:
    """The bytes of one attachment of an outbox row: inline (base64) or built by its source."""
    if "content" in item:
        return base64.b64decode(item["content"])
    source = _ATTACHMENT_SOURCES.get(item.get("source", ""))
    if source is None:
        raise AttachmentUnavailable(
            f"Attachment {item.get('filename')!r}: no attachment source {item.get('source')!r}"
        )
    return source(item["ref"])


@dataclass(frozen=True)
class PortalSite:
    """What emails call the portal: allauth's templates read it as `current_site`.

    The portal does not use Django's Sites framework, so without this allauth's emails said
    "Hello from !" (the request's RequestSite has no name once the email is rendered for the
    outbox). Name and address come from settings, in the active language.
    """

    name: str
    domain: str
    url: str

    def __str__(self) -> str:
        return self.name


def portal_site() -> PortalSite:
    """The portal's name (PORTAL_SITE_NAME, translated when not set) and address."""
    url = settings.PORTAL_SITE_URL
    return PortalSite(name=str(settings.PORTAL_SITE_NAME), domain=urlsplit(url).netloc, url=url)


def site_context() -> dict[str, Any]:
    """The variables every email template may use to name the portal and link to it."""
    site = portal_site()
    return {
        "current_site": site,
        "site_name": site.name,
        "site_domain": site.domain,
        "site_url": site.url,
    }


def email_subject(subject: str) -> str:
    """A subject with the portal's prefix, "[Licensing Portal] …" in the active language."""
    return f"[{portal_site().name}] " + " ".join(subject.split())


class EmailTemplates:
    """An email's subject/text/HTML template trio, looked up once for many renderings."""

    def __init__(self, template: str) -> None:
        # The engine's own template, which renders a Context (autoescape off: see render).
        self.subject = Engine.get_default().get_template(f"emails/{template}_subject.txt")
        self.text = get_template(f"emails/{template}_body.txt")
        self.html = get_template(f"emails/{template}_body.html")

    def render(self, context: dict[str, Any]) -> tuple[str, str, str]:
        """Subject (with the portal's prefix), text and HTML for a context that has the site's
        variables already (site_context)."""
        # A subject is plain text, never HTML: rendered without autoescaping, as base.txt renders
        # the text body, or a product "R&D Tools" would arrive as "R&amp;D Tools".
        subject = email_subject(self.subject.render(Context(context, autoescape=False)))
        return subject, self.text.render(context), self.html.render(context)


def render_email(template: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """Renders emails/<template>_{subject.txt,body.txt,body.html}."""
    return EmailTemplates(template).render({**site_context(), **context})


def queue_email(
    *,
    template: str,
    to: list[str],
    context: dict[str, Any],
    attachments: Sequence[Attachment | AttachmentRef] | None = None,
    language: str | None = None,
) -> OutboundEmail:
    """Renders an email into the outbox and sends it after the current transaction commits.

    Without `language`, each recipient reads it in their own (recipient_languages): one outbox
    row per language, the first returned.
    """
    groups = {language: to} if language else _by_language(to, recipient_languages(to))
    emails = []
    for group_language, addresses in groups.items():
        with translation.override(group_language):
            subject, text, html = render_email(template, context)
        emails.append(
            queue_email_rendered(
                template=template,
                to=addresses,
                subject=subject,
                text=text,
                html=html,
                attachments=attachments,
            )
        )
    return emails[0]


def sender_language() -> str:
    """The language an email is written in when its reader's is not known: the active one (the
    request's), else the portal's default (a scheduled job)."""
    return translation.get_language() or settings.LANGUAGE_CODE


def recipient_languages(addresses: Sequence[str]) -> dict[str, str]:
    """The language each address that belongs to an account reads its emails in: the one its
    user last chose on the portal (User.language). Addresses without an account, or whose
    user never chose, are left out: they read the sender's language. One query."""
    from .models import User

    wanted = {address.strip().lower() for address in addresses if address and address.strip()}
    if not wanted:
        return {}
    return dict(
        User.objects.filter(email__in=wanted).exclude(language="").values_list("email", "language")
    )


def _by_language(
    to: Sequence[str], languages: dict[str, str], default: str | None = None
) -> dict[str, list[str]]:
    """`to` split by the language each address reads (`default` or the sender's when not in
    `languages`), in order."""
    sender = default or sender_language()
    groups: dict[str, list[str]] = {}
    for address in to:
        groups.setdefault(languages.get(address.strip().lower()) or sender, []).append(address)
    return groups or {sender: list(to)}


def queue_email_variants(
    *,
    template: str,
    variants: Sequence[tuple[list[str], dict[str, Any]]],
    attachments: Sequence[Attachment | AttachmentRef] | None = None,
    language: str | None = None,
    languages: dict[str, str] | None = None,
) -> list[OutboundEmail]:
    """queue_email for recipients who must read different bodies of one email: each variant
    (recipients, context) is rendered on its own, and all are written in one INSERT.

    `languages` (lowercase address → language, "" unknown) splits a variant's recipients by the
    language they read, the others reading `language` or the sender's; no query of its own.
    """
    return queue_email_rows(
        email_variant_rows(
            template=template,
            variants=variants,
            attachments=attachments,
            language=language,
            languages=languages,
        )
    )


def email_variant_rows(
    *,
    template: str,
    variants: Sequence[tuple[list[str], dict[str, Any]]],
    attachments: Sequence[Attachment | AttachmentRef] | None = None,
    language: str | None = None,
    languages: dict[str, str] | None = None,
) -> list[OutboundEmail]:
    """The unsaved outbox rows of queue_email_variants, for a composer (queue_email_later)."""
    emails = [EmailToQueue(template, to, context) for to, context in variants if to]
    if languages:
        emails = [
            EmailToQueue(template, addresses, email.context, group)
            for email in emails
            for group, addresses in _by_language(email.to, languages, language).items()
        ]
    return _rendered_rows(emails, language=language, attachments=attachments)


def queue_email_rows(rows: list[OutboundEmail]) -> list[OutboundEmail]:
    """Writes rendered outbox rows (one INSERT) and hands them over after the commit."""
    if len(rows) == 1:
        rows[0].save(force_insert=True)
        transaction.on_commit(partial(hand_off, rows[0].pk), robust=True)
    elif rows:
        OutboundEmail.objects.bulk_create(rows)
        # One task for the bodies of one email: a broker round trip each cost the mint ~1 ms.
        transaction.on_commit(partial(hand_off_batches, [row.pk for row in rows]), robust=True)
    return rows


def emails_written_by_sender() -> bool:
    """Whether an email queued with queue_email_later is written by the Celery worker that
    sends it (the full stack), not here and now (tasks run in-process: the embedded default
    and the tests, where the sender is this process anyway)."""
    from .tasks import send_outbound_emails

    return not send_outbound_emails.app.conf.task_always_eager


def queue_email_later(*, template: str, spec: dict[str, Any]) -> OutboundEmail:
    """Queues an email that its sender writes: one small outbox row naming what it is written
    from (`spec`, JSON, with the "composer" registered with composer_register), handed over
    after the commit; the worker turns it into the rendered rows before sending them
    (portal.services.outbox_compose).

    For the emails of a hot transaction (the mint): rendering, recipients and attachments
    happen outside it. What the email says comes from `spec` and the committed rows it names,
    so the caller puts into `spec` whatever only the request knows (its language, who acts).
    """
    now = timezone.now()
    email = OutboundEmail(
        created_at=now,
        next_attempt_at=now,
        template=template,
        to=[],
        subject="",
        body_text="",
        compose=spec,
    )
    rows_insert([email])  # the mint's: as email.save(force_insert=True), without the compiler
    # The batch task: the one row becomes as many as the email has bodies, sent together.
    transaction.on_commit(partial(hand_off_batches, [email.pk], compose=True), robust=True)
    return email


def queue_email_rendered(
    *,
    template: str,
    to: list[str],
    subject: str,
    text: str,
    html: str = "",
    attachments: Sequence[Attachment | AttachmentRef] | None = None,
) -> OutboundEmail:
    """Writes an already rendered email to the outbox and sends it after commit."""
    email = _outbox_row(
        template=template, to=to, subject=subject, text=text, html=html, attachments=attachments
    )
    email.save(force_insert=True)
    # robust: whatever the hand-off raises, the request that committed the change succeeds.
    transaction.on_commit(partial(hand_off, email.pk), robust=True)
    return email


@dataclass(frozen=True)
class EmailToQueue:
    """One email of a bulk queue_emails: its template trio, recipients and context."""

    template: str
    to: list[str]
    context: dict[str, Any]
    # The language it is written in; empty: queue_emails' `language`, else the active one.
    language: str = ""


def queue_emails(*, emails: Sequence[EmailToQueue], language: str | None = None) -> int:
    """Renders many emails into the outbox with one INSERT per 500 and sends them after commit.

    The bulk form of queue_email, for jobs that notify thousands (a version's upgrade notices):
    the same rows, without a statement per email, handed to Celery in batches that each send
    over one connection (portal.services.outbound_emails_send).

    Without `language`, an email without its own language to several people who read
    different languages is written once per language (recipient_languages: one query for the
    whole call, none when every email has its language).
    """
    if not language:
        languages = recipient_languages(
            [address for email in emails if not email.language for address in email.to]
        )
        emails = [
            EmailToQueue(email.template, addresses, email.context, email.language or group)
            for email in emails
            for group, addresses in _by_language(email.to, languages).items()
        ]
    rows = _rendered_rows(emails, language=language)
    OutboundEmail.objects.bulk_create(rows, batch_size=500)
    # One hand-off per batch of OUTBOX_BATCH_SIZE, sent by a task over one connection: a
    # thousand notices are twenty tasks, not a thousand tasks of three statements each.
    transaction.on_commit(partial(hand_off_batches, [row.pk for row in rows]), robust=True)
    return len(rows)


def _rendered_rows(
    emails: Sequence[EmailToQueue],
    *,
    language: str | None,
    attachments: Sequence[Attachment | AttachmentRef] | None = None,
) -> list[OutboundEmail]:
    """The unsaved outbox rows of `emails`, each rendered in its own language, or `language`,
    or the active one; in the order of `emails`."""
    default = language or sender_language()
    by_language: dict[str, list[int]] = {}
    for index, email in enumerate(emails):
        by_language.setdefault(email.language or default, []).append(index)
    rows: list[OutboundEmail | None] = [None] * len(emails)
    # The templates once per call and the site's variables once per language, not per email.
    templates: dict[str, EmailTemplates] = {}
    for email_language, indexes in by_language.items():
        with translation.override(email_language):
            site = site_context()
            for index in indexes:
                email = emails[index]
                if email.template not in templates:
                    templates[email.template] = EmailTemplates(email.template)
                subject, text, html = templates[email.template].render({**site, **email.context})
                rows[index] = _outbox_row(
                    template=email.template,
                    to=email.to,
                    subject=subject,
                    text=text,
                    html=html,
                    attachments=attachments,
                )
    return [row for row in rows if row is not None]


def _outbox_row(
    *,
    template: str,
    to: list[str],
    subject: str,
    text: str,
    html: str = "",
    attachments: Sequence[Attachment | AttachmentRef] | None = None,
) -> OutboundEmail:
    recipients = sorted({address.strip().lower() for address in to if address and address.strip()})
    now = timezone.now()
    return OutboundEmail(
        created_at=now,
        next_attempt_at=now,
        template=template,
        to=recipients,
        subject=subject[:300],
        body_text=text,
        body_html=html,
        attachments=[_attachment_json(attachment) for attachment in attachments or []],
    )


def _attachment_json(attachment: Attachment | AttachmentRef) -> dict[str, str]:
    if isinstance(attachment, AttachmentRef):
        return {
            "filename": attachment.filename,
            "mimetype": attachment.mimetype,
            "source": attachment.source,
            "ref": attachment.ref,
        }
    return {
        "filename": attachment.filename,
        "content": base64.b64encode(attachment.content).decode("ascii"),
        "mimetype": attachment.mimetype,
    }


def hand_off(email_id: UUID) -> bool:
    """Queues the send of one outbox email; with the broker down, leaves it to the relay."""
    from .broker import enqueue
    from .tasks import send_outbound_email

    return enqueue(send_outbound_email, str(email_id))


def hand_off_batches(email_ids: Sequence[UUID], *, compose: bool = False) -> int:
    """Queues the send of many outbox emails, a batch per task; returns the batches queued.
    With `compose`, some are still to be written by the sender (queue_email_later).

    With the broker down the first failed batch marks it down (portal.breaker), so the rest are
    left to the relay without waiting for it again.
    """
    from .broker import enqueue
    from .tasks import send_outbound_emails

    size = settings.OUTBOX_BATCH_SIZE
    return sum(
        enqueue(send_outbound_emails, [str(pk) for pk in email_ids[start : start + size]], compose)
        for start in range(0, len(email_ids), size)
    )


def message_id(email: OutboundEmail) -> str:
    """The Message-ID of an outbox email: the same for every attempt, so a duplicate sent after
    a lost acknowledgement is recognisable as one."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "licensing-portal"
    return f"<{email.pk}@{domain}>"


def sender_address(subject: str) -> str:
    """The From of an outbox email: DEFAULT_FROM_EMAIL, whose default display name is the
    portal's name in the language the email was written in, as its subject's prefix is.

    The outbox row keeps no language; its subject's prefix ("[Portal de licenciamento] …",
    email_subject) says which it was, so the From is derived from it when the email is sent.
    A display name configured in DEFAULT_FROM_EMAIL (PORTAL_FROM_NAME_IS_SITE_NAME false) is
    kept as it is, and so is the default for a subject no language's prefix starts.
    """
    if not settings.PORTAL_FROM_NAME_IS_SITE_NAME:
        return settings.DEFAULT_FROM_EMAIL
    for language, _label in settings.LANGUAGES:
        with translation.override(language):
            name = portal_site().name
        if subject.startswith(f"[{name}] "):
            return formataddr((name, parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))
    return settings.DEFAULT_FROM_EMAIL


def deliver(email: OutboundEmail, *, connection: BaseEmailBackend | None = None) -> None:
    """Sends one outbox message through the configured backend (SMTP: within EMAIL_TIMEOUT),
    over `connection` when a batch shares one.

    Attachments named by reference are built first: one that cannot be built fails the send
    before the mail server is contacted (AttachmentUnavailable, recorded on the row).
    """
    attachments = [
        (item["filename"], attachment_content(item), item["mimetype"]) for item in email.attachments
    ]
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=email.body_text,
        from_email=sender_address(email.subject),
        to=email.to,
        headers={"Message-ID": message_id(email)},
        connection=connection,
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    for filename, content, mimetype in attachments:
        message.attach(filename, content, mimetype)
    message.send()
