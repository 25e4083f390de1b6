"""The FastAPI application factory. Connections are opened by the lifespan,
never at import time."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio.to_thread
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.api.authentication import Authentication
from services.api.errors import install_error_handlers
from services.api.in_thread import request_threads
from services.api.middleware import BodySizeLimit, RequestObservation, route_templates
from services.api.routes import (
    analytics,
    api_keys,
    audit,
    console,
    demo,
    events,
    handoffs,
    health,
    people,
    presence,
    redaction,
    retention,
    signin,
    slack,
    teams,
    webhooks,
)
from services.api.streaming.hub import EventHub
from shared.auth.authenticator import Authenticator
from shared.auth.people import PeopleRegistry
from shared.core.db import POOL_SIZE, autocommit_reads, make_engine
from shared.core.queue_metrics import QueueCollector
from shared.core.ratelimit import RateLimits
from shared.core.redis_client import async_redis_for, redis_for
from shared.core.settings import Settings, get_settings
from shared.events.outbox import Outbox
from shared.events.stream_registry import StreamRegistry
from shared.handoffs.claim_flights import ClaimFlights
from shared.redaction.service import RedactorCache
from shared.routing.presence import Presence

#: Sync routes run in anyio's thread pool, its limiter raised from anyio's default 40.
THREADPOOL_SIZE = 100
#: The hot routes' hops (``request_threads``): the database pool's connections and a
#: few more for work that needs none (a rate limit's round trip, a token). More only
#: queued for a connection while contending for the GIL: with 100, a create or a
#: claim cost ~20 % more CPU (docs/decisions.md, "The hop on the app's own thread pool").
REQUEST_THREADS = POOL_SIZE + 6


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADPOOL_SIZE
        app.state.engine = engine = make_engine(
            settings.database_url,
            pre_ping=False,
            prepared_statements=settings.database_prepared_statements,
        )
        app.state.read_engine = autocommit_reads(engine)
        app.state.request_threads = threads = request_threads(REQUEST_THREADS)
        app.state.redis = redis = redis_for(settings)
        app.state.metrics = CollectorRegistry()
        app.state.metrics.register(QueueCollector(redis))
        outbox = Outbox(engine=engine, redis=redis, settings=settings)
        app.state.dispatcher = outbox.dispatcher
        outbox.start()
        app.state.rate_limits = RateLimits.from_settings(redis, settings)
        app.state.authenticator = authenticator = Authenticator.from_settings(settings, engine)
        app.state.presence = Presence.from_settings(redis, settings)
        app.state.people = PeopleRegistry(engine, write_seconds=settings.people_seen_write_seconds)
        app.state.authentication = Authentication(
            authenticator=authenticator,
            limits=app.state.rate_limits,
            people=app.state.people,
            redis=redis,
            settings=settings,
        )
        app.state.stream_registry = streams = StreamRegistry(
            redis,
            ttl_seconds=settings.stream_slot_ttl_seconds,
            refresh_seconds=settings.stream_slot_refresh_seconds,
            presence=app.state.presence,
        )
        streams.start()
        app.state.hub = hub = EventHub(
            partial(async_redis_for, settings),
            queue_size=settings.sse_queue_size,
            replay_concurrency=settings.event_replay_concurrency,
            ping_seconds=settings.sse_ping_seconds,
            send_timeout_seconds=settings.sse_send_timeout_seconds,
        )
        hub.start()
        try:
            yield
        finally:
            await hub.stop()
            threads.shutdown(wait=True)  # the hops' work is done before the engine goes
            outbox.stop()
            streams.stop()
            authenticator.close()
            redis.close()
            engine.dispose()

    app = FastAPI(
        title="Escalation Mode",
        version="0.1.0",
        description="Escalate stuck troubleshooting sessions to senior engineers, live.",
        lifespan=lifespan,
        # /docs, /redoc and /openapi.json only when ESCALATIONS_API_DOCS is on.
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
        openapi_url="/openapi.json" if settings.api_docs else None,
    )
    app.state.settings = settings
    app.state.claim_flights = ClaimFlights()  # per process: see shared.handoffs.claim_flights
    app.state.redactors = RedactorCache(  # per process: see shared.redaction.service
        ttl_seconds=settings.redaction_cache_seconds,
        budget_seconds=settings.redaction_budget_seconds,
    )
    install_error_handlers(app)
    app.include_router(handoffs.router)
    app.include_router(events.router)
    app.include_router(health.router)
    app.include_router(analytics.router)
    app.include_router(teams.router)
    app.include_router(presence.router)
    app.include_router(people.router)
    app.include_router(webhooks.router)
    app.include_router(api_keys.router)
    app.include_router(signin.router)
    app.include_router(slack.router)
    app.include_router(retention.router)
    app.include_router(audit.router)
    app.include_router(redaction.router)
    app.include_router(demo.router)
    console.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    templates = route_templates([*events.router.routes, *app.routes])
    app.add_middleware(RequestObservation, templates=templates)  # outermost: counts 413s too
    return app
