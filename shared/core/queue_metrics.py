"""A Prometheus collector that reads the ``assessments`` and ``notifications``
queues from Redis at scrape time: jobs waiting and jobs failed for good."""

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from shared.core import keys

log = logging.getLogger(__name__)


class QueueCollector(Collector):
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "escalations_queue_depth", "Jobs waiting in the queue.", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "escalations_queue_failed_jobs", "Jobs in the failed-job registry.", labels=["queue"]
        )
        try:
            for name in (keys.ASSESSMENTS_QUEUE, keys.NOTIFICATIONS_QUEUE):
                queue = Queue(name, connection=self._redis)
                depth.add_metric([queue.name], queue.count)
                failed.add_metric([queue.name], queue.failed_job_registry.count)
        except RedisError as exc:
            log.warning("metrics: queue figures unavailable: %s", exc)
        yield depth
        yield failed
