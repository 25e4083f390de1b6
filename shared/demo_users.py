"""The demo org's users, shared by ``escalations up`` (its banner's tokens) and
the API's demo sign-in (``ESCALATIONS_DEMO_SIGN_IN``)."""

from datetime import timedelta

from shared.auth import issue_token
from shared.models import Role

DEMO_ORG = "demo"
#: role → (user id, display name)
DEMO_USERS: dict[Role, tuple[str, str]] = {
    Role.engineer: ("demo-junior", "Jamie Junior"),
    Role.senior: ("demo-senior", "Sam Senior"),
    Role.admin: ("demo-admin", "Alex Admin"),
}
DEMO_TOKEN_TTL = timedelta(hours=12)


def demo_token(role: Role, *, secret: str) -> str:
    """A bearer token for the demo user of ``role`` in org ``demo``, valid 12 h."""
    sub, name = DEMO_USERS[role]
    return issue_token(
        secret=secret, sub=sub, name=name, role=role, org=DEMO_ORG, ttl=DEMO_TOKEN_TTL
    )
