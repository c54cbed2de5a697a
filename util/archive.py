"""Archive: moves a free user's results to cold storage once their window is over.

For an archive message (delivered after the retention window) and, every
GAS_ARCHIVE_SWEEP_S, for every job the sparse archive index says is due (the
safety net for a message that was never published), `archive_job`:
1. checks the user's CURRENT plan: premium -> take the job out of the index, done;
2. not due yet -> ask again when it is (the message is re-delayed, never slept on);
3. copies the results to cold storage and verifies the copy;
4. records ARCHIVED, in one transaction with a check that the user is still free;
5. only then deletes the results from the results bucket. The log stays.
Killed between any two steps, the next delivery (or sweep) finishes the work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gas import archive
from gas.files import Files
from gas.jobs import Job, JobStatus, JobStore
from gas.log import log_context
from gas.settings import Settings
from gas.users import UserStore
from gas.worker import Handler, Message, RetryLater, serve

log = logging.getLogger("util.archive")
MAX_VISIBILITY_S = 12 * 3600  # SQS's longest visibility timeout


class Archiver:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jobs, self.users, self.files = JobStore(settings), UserStore(settings), Files(settings)
        self.backend = archive.backend(settings)

    def archive_job(self, job: Job) -> None:
        """Bring one job to where it should be; RetryLater if it is not due yet."""
        if job.job_status == JobStatus.ARCHIVED:
            self._drop_hot_copy(job)  # a run killed after recording ARCHIVED left it
            return
        if job.job_status != JobStatus.COMPLETED or job.archive_due_at is None:
            return  # not (or no longer) waiting for an archive
        user = self.users.get(job.user_id)
        if user is not None and user.premium:
            self.jobs.unschedule_archive(job.job_id)
            log.info("user is premium: results stay")
            return
        wait = job.archive_due_at - int(time.time())
        if wait > 0:
            raise RetryLater(min(wait, MAX_VISIBILITY_S), "retention window not over yet")
        reference = self.backend.archive(job)
        if self.jobs.archive(job, reference, self.settings.users_table):
            log.info("results archived", extra=reference)
            self._drop_hot_copy(job)
            return
        # Refused: the user upgraded meanwhile, or another run archived it first.
        current = self.jobs.get(job.job_id)
        if current is None or current.job_status != JobStatus.ARCHIVED:
            self.backend.delete(job, reference)  # our cold copy is not needed
            self.jobs.unschedule_archive(job.job_id)
            log.info("archive refused (the user upgraded); results stay")
        elif any(getattr(current, k) != v for k, v in reference.items()):
            self.backend.delete(job, reference)  # another run's copy is the one recorded

    def _drop_hot_copy(self, job: Job) -> None:
        if job.s3_results_bucket and job.s3_key_result_file:
            self.files.delete(job.s3_results_bucket, job.s3_key_result_file)

    def sweep(self) -> None:
        """Archive every job the index says is due (the messages' safety net)."""
        for job in self.jobs.due_for_archive(int(time.time())):
            with log_context(job_id=job.job_id, user_id=job.user_id):
                try:
                    self.archive_job(job)
                except RetryLater:
                    pass
                except Exception:
                    log.exception("sweep could not archive this job; it tries again next time")


def make_handler(settings: Settings) -> Handler:
    archiver = Archiver(settings)

    def handle(message: Message) -> None:
        job = archiver.jobs.get(str(message.body.get("job_id")))
        if job is None:
            log.warning("archive message for an unknown job; dropped")
            return
        archiver.archive_job(job)

    return handle


def sweeper(settings: Settings) -> tuple[float, Callable[[], None]]:
    return float(settings.archive_sweep_s), Archiver(settings).sweep


if __name__ == "__main__":
    serve("archive", lambda s: s.archive_queue, make_handler, every=sweeper)
