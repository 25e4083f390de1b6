"""The RQ job ``services.worker.slack.sync_slack_message(message_id)``: one
Slack message brought to its handoff's current state (``shared.slack.jobs``).
Slack's failures never raise here: when to try again lives in the database."""

from services.worker.context import get_context
from shared.slack.jobs import sync_message


def sync_slack_message(message_id: str) -> str:
    context = get_context()
    return sync_message(
        engine=context.engine,
        redis=context.redis,
        settings=context.settings,
        message_id=message_id,
    )
