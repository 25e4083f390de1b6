"""``/api/v1/integrations/slack``: thin routes over ``shared.slack``.

The connection and the admin's link routes need an admin; a person links their
own Slack account with a code. The interactivity endpoint is Slack's: no bearer
token, a signature instead; it answers at once and does the click's work after
the answer (Slack wants one within 3 seconds), telling the user the outcome
through the payload's ``response_url``."""

import logging

from fastapi import APIRouter, BackgroundTasks, Request, Response
from sqlalchemy.exc import SQLAlchemyError

from services.api.deps import AdminDep, PrincipalDep, RedisDep, SessionDep, SettingsDep
from services.api.errors import errors
from shared.core.errors import NotAuthenticated, NotFound
from shared.slack import service
from shared.slack.interactions import Click, handle_click, parse_click, respond, verified
from shared.slack.models import (
    ConnectionBody,
    ConnectionPublic,
    LinkBody,
    LinkCode,
    LinkList,
    LinkPublic,
    SlackUserId,
)

log = logging.getLogger(__name__)
UNAVAILABLE = "Escalation Mode could not finish that just now; try again shortly."

router = APIRouter(prefix="/api/v1/integrations/slack", tags=["slack"])


@router.put("", responses=errors(400, 403, 409, 413, 429))
def connect(body: ConnectionBody, principal: AdminDep, session: SessionDep) -> ConnectionPublic:
    """The answer never carries the bot token (nor does any later one)."""
    return service.connect(session=session, principal=principal, body=body)


@router.get("", responses=errors(403, 404, 429))
def describe(principal: AdminDep, session: SessionDep) -> ConnectionPublic:
    return service.describe(session=session, org_id=principal.org_id)


@router.delete("", status_code=204, responses=errors(403, 404, 429))
def disconnect(principal: AdminDep, session: SessionDep) -> Response:
    service.disconnect(session=session, principal=principal)
    return Response(status_code=204)


@router.post("/links", status_code=201, responses=errors(400, 404, 413, 429, 503))
def redeem_link_code(
    body: LinkCode, principal: PrincipalDep, session: SessionDep, redis: RedisDep
) -> LinkPublic:
    """Links the Slack user who got ``code`` to the signed-in caller."""
    return service.redeem_link_code(
        session=session, redis=redis, principal=principal, code=body.code
    )


@router.get("/links", responses=errors(403, 429))
def list_links(principal: AdminDep, session: SessionDep) -> LinkList:
    return service.list_links(session=session, org_id=principal.org_id)


@router.put("/links/{slack_user_id}", responses=errors(400, 403, 413, 429))
def put_link(
    slack_user_id: SlackUserId, body: LinkBody, principal: AdminDep, session: SessionDep
) -> LinkPublic:
    return service.put_link(
        session=session, principal=principal, slack_user_id=slack_user_id, body=body
    )


@router.delete("/links/{slack_user_id}", status_code=204, responses=errors(403, 404, 429))
def delete_link(slack_user_id: str, principal: AdminDep, session: SessionDep) -> Response:
    service.delete_link(session=session, principal=principal, slack_user_id=slack_user_id)
    return Response(status_code=204)


@router.post("/interactions", responses=errors(400, 404, 413))
async def interactions(
    request: Request, background: BackgroundTasks, settings: SettingsDep
) -> Response:
    """Slack's interactivity request URL. 404 ``slack_not_configured`` without a
    signing secret; 401 ``invalid_slack_signature`` for a bad signature or a
    timestamp more than 5 minutes off; else 200 at once."""
    if not settings.slack_signing_secret:
        raise NotFound("Slack interactivity is not configured.", code="slack_not_configured")
    body = await request.body()
    if not verified(
        signing_secret=settings.slack_signing_secret,
        body=body,
        timestamp=request.headers.get("x-slack-request-timestamp"),
        signature=request.headers.get("x-slack-signature"),
    ):
        raise NotAuthenticated(
            "The Slack signature is missing, wrong or too old.", code="invalid_slack_signature"
        )
    click = parse_click(body)
    if click is not None:
        background.add_task(_act, request, click)
    return Response(status_code=200)


def _act(request: Request, click: Click) -> None:
    """After the answer, in the thread pool: the click's work, then its outcome."""
    state = request.app.state
    try:
        text = handle_click(
            engine=state.engine,
            redis=state.redis,
            settings=state.settings,
            click=click,
            flights=state.claim_flights,
        )
    except SQLAlchemyError as exc:
        log.warning("slack click by %s: database unavailable: %s", click.slack_user_id, exc)
        text = UNAVAILABLE
    except Exception:  # the user must hear something; the bug goes to the log
        log.exception("slack click by %s failed", click.slack_user_id)
        text = UNAVAILABLE
    if text is not None:
        respond(click.response_url, text)
