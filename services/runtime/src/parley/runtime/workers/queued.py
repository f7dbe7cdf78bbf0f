"""What the runtime's two queue workers share: pulling one durable consumer of a work-queue
stream (the inbox, the executions) that every runtime binds, and keeping both alive."""

from collections.abc import Sequence

from parley.kit.needs import Need
from parley.kit.workqueue import WorkQueue
from parley.kit.workqueue import ensure_work_stream
from parley.runtime.deps import Deps

__all__ = ["QueueWorker"]


class QueueWorker:
    """A worker that takes this process's share of a work-queue stream."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._queue: WorkQueue | None = None
        self._subjects: Sequence[str] = ()

    async def _pull(self, queue: WorkQueue, subjects: Sequence[str]) -> None:
        """Create the queue's stream (of ``subjects``) if needed, then start pulling."""
        replicas = self.deps.settings.nats_replicas
        await ensure_work_stream(queue.js, queue.stream, subjects, replicas=replicas)
        self._queue, self._subjects = queue, subjects
        await queue.start()

    @property
    def needs(self) -> list[Need]:
        """The stream and its consumer (once started), kept while the process runs."""
        assert self._queue is not None, "start() first"
        return self._queue.stream_and_consumer(
            self._subjects, replicas=self.deps.settings.nats_replicas
        )

    async def stop(self) -> None:
        """Stop pulling (unfinished items come back to another runtime)."""
        if self._queue is not None:
            await self._queue.stop()
