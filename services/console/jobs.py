"""Long jobs (a payment run over several organisations, a report export): an asyncio task
each, their state in this process's memory only, keyed by an unguessable id and owned by the
signed-in user who started them. A job holds no business data beyond its transient result
(which may be downloaded again and again meanwhile), and the job and its result are dropped
`KEEP_SECONDS` (30 minutes) after the job ends; a running job is kept. Expired jobs are
dropped whenever a job is started or looked up."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from libs.common.logging import get_logger
from services.console.clients import Refusal

log = get_logger("backoffice.console.jobs")

RUNNING, DONE, FAILED = "running", "done", "failed"
KEEP_SECONDS = 30 * 60


def owner_of(token: str) -> str:
    """Who owns a job: a digest of the bearer token that started it (never the token)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Job:
    id: str
    owner: str
    title: str
    total: int
    done: int = 0
    state: str = RUNNING
    log: list[str] = field(default_factory=list)
    refusal: Refusal | None = None
    result: bytes | None = None
    filename: str = ""
    media_type: str = "text/csv"
    # When it started and ended, by its `Jobs`' clock (time.monotonic); None while it runs.
    started: float = 0.0
    ended: float | None = None

    def step(self, message: str) -> None:
        self.done += 1
        self.log.append(message)

    @property
    def percent(self) -> int:
        return 100 if self.state != RUNNING else int(100 * self.done / max(self.total, 1))


JobBody = Callable[[Job], Awaitable[None]]


class Jobs:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, owner: str, title: str, total: int, body: JobBody) -> Job:
        self._expire()
        job = Job(secrets.token_urlsafe(24), owner, title, total, started=self.clock())
        self._jobs[job.id] = job
        task = asyncio.get_running_loop().create_task(self._run(job, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: Job, body: JobBody) -> None:
        try:
            await body(job)
            job.state = DONE
        except Refusal as refusal:
            job.refusal = refusal
            job.state = FAILED
        except Exception as err:  # the job's page says it failed; the log has why
            log.exception("console job failed", job=job.title)
            job.refusal = Refusal("INTERNAL", f"the job stopped unexpectedly ({type(err).__name__})")
            job.state = FAILED
        finally:
            job.ended = self.clock()

    def get(self, job_id: str, owner: str) -> Job | None:
        """The job, only for its owner (anyone else is told there is no such job), unless it
        expired."""
        self._expire()
        job = self._jobs.get(job_id)
        if job is None or not secrets.compare_digest(job.owner, owner):
            return None
        return job

    def _expire(self) -> None:
        now = self.clock()
        for job_id, job in list(self._jobs.items()):
            if job.ended is not None and now - job.ended > KEEP_SECONDS:
                del self._jobs[job_id]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
