"""``/api/v1/webhooks``: thin routes over ``shared.webhooks``. Admins only;
another org's subscription or delivery is 404."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.api.deps import AdminDep, SessionDep, SettingsDep, WebhookDep, org_rate_limit
from services.api.errors import errors
from shared.audit.service import actor_of
from shared.core.ratelimit import Limit
from shared.webhooks import deliveries, subscriptions
from shared.webhooks.models import (
    DeliveryAccepted,
    DeliveryPage,
    WebhookCreate,
    WebhookList,
    WebhookPatch,
    WebhookPublic,
    WebhookWithSecret,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


@router.post("", status_code=201, responses=errors(400, 403, 409, 413, 429))
def create_webhook(
    body: WebhookCreate, principal: AdminDep, session: SessionDep, settings: SettingsDep
) -> WebhookWithSecret:
    """The answer is the only one besides rotate-secret that carries ``secret``."""
    return subscriptions.create_webhook(
        session=session,
        actor=actor_of(principal),
        org_id=principal.org_id,
        body=body,
        allow_private=settings.webhook_allow_private_networks,
        max_webhooks=settings.max_webhooks_per_org,
    )


@router.get("", responses=errors(403, 429))
def list_webhooks(principal: AdminDep, session: SessionDep) -> WebhookList:
    return subscriptions.list_webhooks(session=session, org_id=principal.org_id)


@router.get("/{webhook_id}", responses=errors(403, 404, 429))
def get_webhook(webhook: WebhookDep, session: SessionDep) -> WebhookPublic:
    return subscriptions.describe(session=session, webhook=webhook)


@router.patch("/{webhook_id}", responses=errors(400, 403, 404, 413, 429))
def patch_webhook(
    body: WebhookPatch,
    principal: AdminDep,
    webhook: WebhookDep,
    session: SessionDep,
    settings: SettingsDep,
) -> WebhookPublic:
    return subscriptions.update_webhook(
        session=session,
        actor=actor_of(principal),
        webhook=webhook,
        body=body,
        allow_private=settings.webhook_allow_private_networks,
    )


@router.delete("/{webhook_id}", status_code=204, responses=errors(403, 404, 429))
def delete_webhook(principal: AdminDep, webhook: WebhookDep, session: SessionDep) -> Response:
    subscriptions.delete_webhook(session=session, actor=actor_of(principal), webhook=webhook)
    return Response(status_code=204)


@router.post("/{webhook_id}/rotate-secret", responses=errors(403, 404, 413, 429))
def rotate_secret(
    principal: AdminDep, webhook: WebhookDep, session: SessionDep
) -> WebhookWithSecret:
    return subscriptions.rotate_secret(session=session, actor=actor_of(principal), webhook=webhook)


#: ``/test`` and ``/redeliver`` make tries on demand: a window per org, shared by both.
SENDS_LIMITED = [org_rate_limit(Limit.WEBHOOK_SENDS)]


@router.post(
    "/{webhook_id}/test",
    status_code=202,
    responses=errors(403, 404, 409, 413, 429),
    dependencies=SENDS_LIMITED,
)
def test_webhook(webhook: WebhookDep, session: SessionDep) -> DeliveryAccepted:
    """One ``webhook_test`` delivery, sent like any other."""
    delivery = deliveries.create_test_delivery(session, webhook=webhook)
    return DeliveryAccepted(delivery=deliveries.delivery_public(delivery))


@router.get("/{webhook_id}/deliveries", responses=errors(403, 404, 429))
def list_deliveries(
    webhook: WebhookDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> DeliveryPage:
    """Newest first."""
    return deliveries.list_deliveries(session, webhook=webhook, limit=limit, cursor=cursor)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    responses=errors(403, 404, 409, 413, 429),
    dependencies=SENDS_LIMITED,
)
def redeliver(webhook: WebhookDep, delivery_id: str, session: SessionDep) -> DeliveryAccepted:
    """Sends a delivered or failed delivery again (same ``webhook-id``, a new round of tries)."""
    delivery = deliveries.redeliver(session, webhook=webhook, delivery_id=delivery_id)
    return DeliveryAccepted(delivery=deliveries.delivery_public(delivery))
