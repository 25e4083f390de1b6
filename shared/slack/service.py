"""An org's Slack connection, and the links between Slack users and people.

Functions take keyword arguments only, commit their own transaction and raise
``shared.core.errors`` exceptions. The bot token goes in and never comes out:
nothing here returns, logs or puts it in an error.
"""

import json
import secrets
from datetime import datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from shared import audit
from shared.auth.tokens import Principal
from shared.core import keys
from shared.core.db import rows_changed
from shared.core.errors import Conflict, NotFound, ServiceUnavailable
from shared.core.models import Role
from shared.core.timeutil import utcnow
from shared.slack.models import (
    ConnectionBody,
    ConnectionPublic,
    LinkBody,
    LinkList,
    LinkPublic,
    SlackConnection,
    SlackLink,
    SlackMessage,
)

#: A link code is single-use and lives this long.
LINK_CODE_TTL_SECONDS = 15 * 60


def _not_connected() -> NotFound:
    return NotFound("This org has no Slack workspace connected.", code="slack_not_connected")


def _workspace_taken() -> Conflict:
    return Conflict("That Slack workspace is connected to another org.", code="workspace_taken")


# --- connection ----------------------------------------------------------------------


def connect(*, session: Session, principal: Principal, body: ConnectionBody) -> ConnectionPublic:
    """Connects (or re-connects) the org's workspace. Raises ``Conflict``
    ``workspace_taken`` when another org holds that workspace."""
    owner = find_connection(session=session, workspace_id=body.workspace_id)
    if owner is not None and owner.org_id != principal.org_id:
        raise _workspace_taken()
    values: dict[str, Any] = {
        "workspace_id": body.workspace_id,
        "bot_token": body.bot_token,
        "channel": body.channel,
        "connected_by_id": principal.user_id,
        "connected_at": utcnow(),
    }
    connection = session.get(SlackConnection, principal.org_id)
    before = None if connection is None else _public(connection)
    if connection is None:
        connection = SlackConnection(org_id=principal.org_id, **values)
    else:
        connection.sqlmodel_update(values)
    session.add(connection)
    audit.record(
        session,
        org_id=principal.org_id,
        actor=principal,
        kind="slack.connected",
        target_id=body.workspace_id,
        before=before,
        after=_public(connection),
    )
    try:
        session.commit()
    except IntegrityError:  # another org connected it at the same moment
        session.rollback()
        raise _workspace_taken() from None
    return _public(connection)


def describe(*, session: Session, org_id: str) -> ConnectionPublic:
    """Raises ``NotFound`` ``slack_not_connected``."""
    connection = session.get(SlackConnection, org_id)
    if connection is None:
        raise _not_connected()
    return _public(connection)


def disconnect(*, session: Session, principal: Principal) -> None:
    """Forgets the workspace and the bot's messages (no more updates are sent);
    links stay, for a reconnection. Raises ``NotFound`` ``slack_not_connected``."""
    org_id = principal.org_id
    connection = session.get(SlackConnection, org_id)
    if connection is None:
        raise _not_connected()
    audit.record(
        session,
        org_id=org_id,
        actor=principal,
        kind="slack.disconnected",
        target_id=connection.workspace_id,
        before=_public(connection),
    )
    session.delete(connection)
    session.execute(delete(SlackMessage).where(col(SlackMessage.org_id) == org_id))
    session.commit()


def find_connection(*, session: Session, workspace_id: str) -> SlackConnection | None:
    """The connection of ``workspace_id`` (so its org), if any."""
    statement = select(SlackConnection).where(SlackConnection.workspace_id == workspace_id)
    return session.exec(statement).first()


def _public(connection: SlackConnection) -> ConnectionPublic:
    return ConnectionPublic(
        workspace_id=connection.workspace_id,
        channel=connection.channel,
        connected_at=connection.connected_at,
    )


# --- links -------------------------------------------------------------------------


def find_link(*, session: Session, org_id: str, slack_user_id: str) -> SlackLink | None:
    return session.get(SlackLink, (org_id, slack_user_id))


def new_link_code(*, redis: Redis, org_id: str, slack_user_id: str) -> str:
    """A one-time code for ``slack_user_id`` of ``org_id``'s workspace, valid
    ``LINK_CODE_TTL_SECONDS``. Raises ``RedisError``."""
    code = secrets.token_urlsafe(24)
    value = json.dumps({"org_id": org_id, "slack_user_id": slack_user_id})
    redis.set(keys.slack_link_code(code), value, ex=LINK_CODE_TTL_SECONDS)
    return code


def redeem_link_code(
    *, session: Session, redis: Redis, principal: Principal, code: str
) -> LinkPublic:
    """Links the code's Slack user to ``principal`` (replacing an earlier link of
    that Slack user). A code works once, within its lifetime, and only for a
    person of the org whose workspace asked for it; anything else is
    ``NotFound`` ``link_code_invalid``, and leaves the code as it was."""
    key = keys.slack_link_code(code)
    try:
        stored = redis.get(key)
        wanted = json.loads(stored) if stored else None
        if not wanted or wanted.get("org_id") != principal.org_id or not redis.delete(key):
            raise NotFound(
                "This link code is unknown, used or expired; click Claim in Slack again.",
                code="link_code_invalid",
            )
    except RedisError as exc:
        raise ServiceUnavailable(
            "Link codes are unavailable; retry shortly.", code="redis_unavailable"
        ) from exc
    return _write_link(
        session,
        actor=principal,
        slack_user_id=str(wanted["slack_user_id"]),
        user_id=principal.user_id,
        user_name=principal.name,
        role=principal.role,
    )


def put_link(
    *, session: Session, principal: Principal, slack_user_id: str, body: LinkBody
) -> LinkPublic:
    """An admin's link (created or replaced)."""
    return _write_link(
        session,
        actor=principal,
        slack_user_id=slack_user_id,
        user_id=body.user_id,
        user_name=body.user_name,
        role=body.role,
    )


def list_links(*, session: Session, org_id: str) -> LinkList:
    statement = (
        select(SlackLink)
        .where(SlackLink.org_id == org_id)
        .order_by(col(SlackLink.user_name), col(SlackLink.slack_user_id))
    )
    return LinkList(items=[_link_public(link) for link in session.exec(statement)])


def delete_link(*, session: Session, principal: Principal, slack_user_id: str) -> None:
    """Raises ``NotFound`` ``slack_link_not_found``."""
    link = find_link(session=session, org_id=principal.org_id, slack_user_id=slack_user_id)
    if link is None:
        raise NotFound(f"Slack user {slack_user_id} is not linked.", code="slack_link_not_found")
    audit.record(
        session,
        org_id=principal.org_id,
        actor=principal,
        kind="slack_link.deleted",
        target_id=slack_user_id,
        before=_link_public(link),
    )
    session.delete(link)
    session.commit()


def remove_person_links(session: Session, *, org_id: str, user_id: str) -> int:
    """In the caller's transaction (erasing a person): their Slack links go."""
    removed = session.execute(
        delete(SlackLink).where(col(SlackLink.org_id) == org_id, col(SlackLink.user_id) == user_id)
    )
    return rows_changed(removed)


def _write_link(
    session: Session,
    *,
    actor: Principal,
    slack_user_id: str,
    user_id: str,
    user_name: str,
    role: Role,
) -> LinkPublic:
    """Creates or replaces the link, with its audit row; commits."""
    org_id = actor.org_id
    values: dict[str, Any] = {
        "user_id": user_id,
        "user_name": user_name,
        "role": role.value,
        "created_at": utcnow(),
    }
    link = find_link(session=session, org_id=org_id, slack_user_id=slack_user_id)
    before = None if link is None else _link_public(link)
    if link is None:
        link = SlackLink(org_id=org_id, slack_user_id=slack_user_id, **values)
    else:
        link.sqlmodel_update(values)
    session.add(link)
    audit.record(
        session,
        org_id=org_id,
        actor=actor,
        kind="slack_link.updated",
        target_id=slack_user_id,
        before=before,
        after=_link_public(link),
    )
    try:
        session.commit()
    except IntegrityError:  # the same Slack user linked concurrently: last one wins
        session.rollback()
        return _write_link(
            session,
            actor=actor,
            slack_user_id=slack_user_id,
            user_id=user_id,
            user_name=user_name,
            role=role,
        )
    return _link_public(link)


def _link_public(link: SlackLink) -> LinkPublic:
    return LinkPublic(
        slack_user_id=link.slack_user_id,
        user_id=link.user_id,
        user_name=link.user_name,
        role=Role(link.role),
        created_at=link.created_at,
    )


def principal_for(link: SlackLink) -> Principal:
    """The person a linked Slack user acts as."""
    return Principal(
        user_id=link.user_id, name=link.user_name, role=Role(link.role), org_id=link.org_id
    )


def seconds_since(moment: datetime | None) -> int:
    return 0 if moment is None else max(0, int((utcnow() - moment).total_seconds()))
