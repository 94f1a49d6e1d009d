"""Enterprise Flexible's emails. Drawdown keys go out through licensing's license email (the
site's contact is the license's technical contact); these are the contract's own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from portal.emails import queue_email
from portal.models import User

if TYPE_CHECKING:
    from .models import ContractYear, EFContract, EFContractUser, EFInvitation


def invitation_email_queue(*, invitation: EFInvitation, inviter: User) -> None:
    """The invitation to join a contract, with the link that accepts it."""
    queue_email(
        template="ef_invitation",
        to=[invitation.email],
        context={"invitation": invitation, "contract": invitation.contract, "inviter": inviter},
    )


def user_added_email_queue(*, contract_user: EFContractUser, actor: User | None) -> None:
    """Tells a user of the customer organization they were put on a contract, and at what level."""
    queue_email(
        template="ef_user_added",
        to=[contract_user.user.email],
        context={
            "contract": contract_user.contract,
            "contract_user": contract_user,
            "actor": actor,
        },
    )


def reminder_email_queue(
    *, contract: EFContract, year: ContractYear, reason: str, days_left: int, to: list[str]
) -> None:
    """A year-end or overdue-report reminder to the contract's super users."""
    queue_email(
        template="ef_reminder",
        to=to,
        context={"contract": contract, "year": year, "reason": reason, "days_left": days_left},
    )
