"""The demo org's users, shared by ``escalations up`` (its banner's tokens, the
``--demo`` scenario and its routing) and the API's demo sign-in
(``ESCALATIONS_DEMO_SIGN_IN``)."""

from datetime import timedelta

from shared.auth.tokens import issue_token
from shared.core.models import Role

DEMO_ORG = "demo"
#: role → (user id, display name): the sign-in users, one per role.
DEMO_USERS: dict[Role, tuple[str, str]] = {
    Role.engineer: ("demo-junior", "Jamie Junior"),
    Role.senior: ("demo-senior", "Sam Senior"),
    Role.admin: ("demo-admin", "Alex Admin"),
}
#: A second senior (not offered at sign-in): the demo Networking team's member,
#: and Sam's rival in the demo's claim races.
NETWORKING_SENIOR: tuple[str, str] = ("demo-senior-2", "Riley Senior")
DEMO_TOKEN_TTL = timedelta(hours=12)


def demo_token(role: Role, *, secret: str) -> str:
    """A bearer token for the demo user of ``role`` in org ``demo``, valid 12 h."""
    sub, name = DEMO_USERS[role]
    return issue_token(
        secret=secret, sub=sub, name=name, role=role, org=DEMO_ORG, ttl=DEMO_TOKEN_TTL
    )


def networking_senior_token(*, secret: str) -> str:
    """A bearer token for ``NETWORKING_SENIOR`` (a senior of org ``demo``), valid 12 h."""
    sub, name = NETWORKING_SENIOR
    return issue_token(
        secret=secret, sub=sub, name=name, role=Role.senior, org=DEMO_ORG, ttl=DEMO_TOKEN_TTL
    )
