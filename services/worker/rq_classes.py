"""The RQ worker classes the service runs, each with a command listener that
stops within a second, and an idle dequeue that finds Redis again within
seconds of an outage's end.

RQ (2.12 with redis-py 8.2) listens for its commands (shutdown, kill the work
horse) on a pub/sub thread that waits up to 60 s per poll, and joins that thread
with no time limit when the worker stops. Once its ``UNSUBSCRIBE`` has been
answered, the thread waits the whole 60 s for a new subscription before it sees
that it was asked to stop, so a burst worker, a worker rebuilt after a Redis
error or a warm shutdown could hang for a minute. A one-second poll costs one
idle wake-up a second and bounds that wait.
"""

from rq import SimpleWorker, SpawnWorker, Worker
from rq.worker.base import BaseWorker

#: Seconds the command listener waits per poll (RQ's own is 60).
COMMAND_POLL_SECONDS = 1.0


class _PromptCommandListener(BaseWorker):
    #: RQ's idle dequeue retries a lost Redis after 1 s, doubling up to this (RQ's
    #: own 60 s left an idle worker asleep 16 s after a 15 s outage had ended).
    max_connection_wait_time = 2.0

    def subscribe(self) -> None:
        """RQ's subscription, with a one-second poll (see the module docstring)."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=COMMAND_POLL_SECONDS,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )


class PromptSimpleWorker(_PromptCommandListener, SimpleWorker):
    """RQ's ``SimpleWorker`` (jobs in the worker's own process)."""


class PromptForkWorker(_PromptCommandListener, Worker):
    """RQ's forking ``Worker`` (a work horse per job)."""


class PromptSpawnWorker(_PromptCommandListener, SpawnWorker):
    """RQ's ``SpawnWorker`` (a spawned work horse per job)."""


WORKER_CLASSES: dict[str, type[BaseWorker]] = {
    "simple": PromptSimpleWorker,
    "fork": PromptForkWorker,
    "spawn": PromptSpawnWorker,
}
