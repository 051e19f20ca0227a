"""Named domain errors. Pages show them with st.error(str(err)); the API maps them to 4xx."""

from __future__ import annotations

from datetime import datetime


class CRMError(Exception):
    """Base of every error the domain raises on purpose."""


class ConfigError(CRMError):
    """A setting has a value the app cannot run with."""


class NotFound(CRMError):
    """The record does not exist (or is not visible to this user)."""


class PermissionDenied(CRMError):
    """This user's role does not allow the action."""


class InvalidTransition(CRMError):
    """Stage change not allowed."""


class ReasonRequired(CRMError):
    """A lost or not-eligible lead needs a reason."""


class StaleEdit(CRMError):
    """Someone else changed the record since it was opened."""

    def __init__(self, *, changed_by: str | None, changed_at: datetime | None) -> None:
        who = changed_by or "someone else"
        when = changed_at.strftime("%Y-%m-%d %H:%M UTC") if changed_at else "just now"
        super().__init__(
            f"Not saved: {who} changed this lead at {when} after you opened it. "
            "Your input is kept below; review their change and save again."
        )
        self.changed_by = changed_by
        self.changed_at = changed_at


class SlotTaken(CRMError):
    """The provider already has a consult at that time."""


class InvalidInput(CRMError):
    """The values given can't be saved as they are (the message says which and why)."""
