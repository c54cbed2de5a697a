"""Thaw: puts a restored result back where the user downloads it.

For a thaw message `{job_id, attempt}`: while the retrieval is in progress, asks
again later with a growing delay (2 s, 4 s, ... capped at SQS's 15 minutes), as a
fresh message, so a Standard retrieval of hours never exhausts the queue's receive
count; no busy loop. A retrieval that expired or failed is requested again. Once
it is done: copy the results back and verify them, delete the cold copy, record
COMPLETED; if the user is free again by then, the result gets a fresh retention
window. Each step is safe to repeat, so a kill between any two is finished by
the next message.
"""

from __future__ import annotations

import logging
import time

from gas import coldstorage
from gas.files import Files
from gas.jobs import Job, JobStatus, JobStore
from gas.messages import Bus, ThawCheck
from gas.settings import SQS_MAX_DELAY_S, Settings, command_line
from gas.users import UserStore
from gas.worker import Handler, Message, serve

log = logging.getLogger("util.thaw")


def next_delay(attempt: int) -> int:
    return min(SQS_MAX_DELAY_S, 2 ** (attempt + 1))


def make_handler(settings: Settings) -> Handler:
    jobs, users, files, bus = (
        JobStore(settings),
        UserStore(settings),
        Files(settings),
        Bus(settings),
    )
    backend = coldstorage.backend(settings)

    def results_back(job: Job) -> bool:
        """The results are back, verified (perhaps put there by a run killed after)."""
        return coldstorage.holds_results(
            files, settings.results_bucket, job.s3_key_result_file or "", job
        )

    def check_later(job: Job, check: ThawCheck) -> None:
        attempt = check.attempt + 1
        bus.thaw_later(job.job_id, job.user_id, attempt, next_delay(attempt))

    def handle(message: Message) -> None:
        check = message.expect(ThawCheck)
        job = jobs.get(check.job_id)
        if job is None or job.job_status != JobStatus.RESTORING:
            return  # thawed already, or never restoring
        if not results_back(job):
            status = backend.restore_status(job)
            if status == coldstorage.GONE:
                restore = backend.request_restore(job)
                jobs.restore_requested_again(job.job_id, restore.tier, restore.restore_job_id)
                log.warning(
                    "retrieval expired or failed; requested again", extra={"tier": restore.tier}
                )
            if status != coldstorage.DONE:
                check_later(job, check)
                return
            backend.thaw(job)
        backend.delete(job)
        user = users.get(job.user_id)
        free_again = user is not None and not user.premium  # downgraded while restoring
        due = int(time.time()) + settings.free_retention_s if free_again else None
        if not jobs.thawed(job.job_id, archive_due_at=due):
            return
        log.info("results restored", extra={"tier": job.restore_tier})
        if due is not None:
            bus.archive_requested(job.job_id, job.user_id)  # the sweep covers a lost one

    return handle


if __name__ == "__main__":
    command_line("python -m util.thaw", __doc__).parse_args()
    serve("thaw", lambda s: s.thaw_queue, make_handler)
