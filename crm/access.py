"""Who may do what: roles, permissions, and the screens each role sees.

Pages check permissions to build the navigation, and every crm service that reads or changes
lead data calls `require()` too, so a page that forgot a check still cannot reach the data.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm.enums import Role
from crm.errors import PermissionDenied


class Perm:
    """Permission names (plain strings so they read well in tests and the audit trail)."""

    LEADS_READ = "leads.read"
    LEADS_WRITE = "leads.write"
    PHONE_INTAKE = "intake.phone"
    CONSULTS = "consults"
    SCREENING_ANSWER = "screening.answer"
    SCREENING_DECIDE = "screening.decide"
    IMPORT = "leads.import"
    DASHBOARD = "dashboard"
    EXPORT = "export"
    USERS = "users.manage"
    SETTINGS = "settings.manage"
    API_KEYS = "apikeys.manage"
    AUDIT = "audit.view"


_CARE_TEAM = frozenset(
    {
        Perm.LEADS_READ,
        Perm.LEADS_WRITE,
        Perm.PHONE_INTAKE,
        Perm.CONSULTS,
        Perm.SCREENING_ANSWER,
    }
)
_PROVIDER = _CARE_TEAM | {Perm.SCREENING_DECIDE}
_MANAGER = _CARE_TEAM | {Perm.DASHBOARD, Perm.EXPORT, Perm.IMPORT}
_ADMIN = _MANAGER | {Perm.USERS, Perm.SETTINGS, Perm.API_KEYS, Perm.AUDIT}

# The clinical call (clearing a lead with open contraindications) belongs to providers only:
# a manager or admin gets it through the provider flag on their account, not their role.
ROLE_PERMS: dict[Role, frozenset[str]] = {
    Role.CARE_TEAM: _CARE_TEAM,
    Role.PROVIDER: _PROVIDER,
    Role.MANAGER: _MANAGER,
    Role.ADMIN: _ADMIN,
}


# The signed-in staff member as services see it: plain data, safe to keep in session state.
@dataclass(frozen=True)
class Actor:
    id: int
    email: str
    name: str
    role: Role
    is_provider: bool = False

    @property
    def label(self) -> str:
        return self.name or self.email


def permissions(actor: Actor | None) -> frozenset[str]:
    """Everything `actor` may do (nothing for an anonymous visitor)."""
    if actor is None:
        return frozenset()
    perms = ROLE_PERMS[Role(actor.role)]
    if actor.is_provider:
        perms = perms | {Perm.SCREENING_DECIDE}
    return perms


def can(actor: Actor | None, perm: str) -> bool:
    return perm in permissions(actor)


def require(actor: Actor | None, perm: str) -> Actor:
    """Return the actor when allowed; raise PermissionDenied otherwise."""
    if actor is None:
        raise PermissionDenied("Please sign in.")
    if not can(actor, perm):
        raise PermissionDenied(f"Your role ({Role(actor.role).value}) can't do this ({perm}).")
    return actor


# Staff screens: (file under pages/, title, icon, permission needed). The router shows each
# person only the screens their permissions allow; order is the sidebar order.
STAFF_PAGES: list[tuple[str, str, str, str]] = [
    ("pages/queue.py", "Triage queue", ":material/inbox:", Perm.LEADS_READ),
    ("pages/lead.py", "Lead", ":material/person:", Perm.LEADS_READ),
    ("pages/phone_intake.py", "Log a phone inquiry", ":material/call:", Perm.PHONE_INTAKE),
    ("pages/consults.py", "Consults", ":material/event:", Perm.CONSULTS),
    ("pages/import_leads.py", "Import leads", ":material/upload_file:", Perm.IMPORT),
    ("pages/dashboard.py", "Pipeline dashboard", ":material/monitoring:", Perm.DASHBOARD),
    ("pages/admin_users.py", "Staff accounts", ":material/group:", Perm.USERS),
    ("pages/admin_settings.py", "Clinic settings", ":material/settings:", Perm.SETTINGS),
    ("pages/admin_audit.py", "Audit trail", ":material/policy:", Perm.AUDIT),
]

PUBLIC_FORM_PAGE = "pages/request_consult.py"
LOGIN_PAGE = "pages/login.py"
