"""Archive: moves a free user's results to cold storage once their window is over.

For an archive message (delivered after the retention window) and, every
GAS_ARCHIVE_SWEEP_S, for every job the sparse archive index lists (the safety net
for a message that was lost), `archive_job`:
1. reads the job afresh and checks the user's CURRENT plan: premium -> the job
   leaves the index, done;
2. not due yet -> ask again when it is (the message is re-delayed, never slept on);
3. copies the results to cold storage and verifies the copy (each attempt makes a
   copy of its own);
4. records ARCHIVED in one transaction that also checks the user is still free and
   the window is over; refused, it deletes its own copy, never the recorded one;
5. only then deletes the other cold copies (a run killed between copying and recording
   leaves its own), then the hot copy, and takes the job out of the index. The log and the
   variant table (`s3_key_variants_file`, for the results viewer) stay in the results
   bucket: only the annotated VCF is archived, and no path deletes a job's results, so
   neither is orphaned; an archived job keeps its `stats` on the item.
Killed between any two steps, the next delivery (or sweep) finishes the work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from gas import coldstorage
from gas.files import Files
from gas.jobs import DROP, Job, JobStatus, JobStore
from gas.log import log_context
from gas.messages import ArchiveRequest
from gas.settings import SQS_MAX_VISIBILITY_S, Settings, command_line
from gas.users import UserStore
from gas.worker import Handler, Message, RetryLater, serve

log = logging.getLogger("util.archive")
# SQS keeps a message invisible at most 12 h from its receipt; stay an hour under it.
MAX_REDELAY_S = SQS_MAX_VISIBILITY_S - 3600


class Archiver:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jobs, self.users, self.files = JobStore(settings), UserStore(settings), Files(settings)
        self.backend = coldstorage.backend(settings)

    def archive_job(self, job_id: str) -> None:
        """Bring one job to where it should be; RetryLater if it is not due yet."""
        job = self.jobs.get(job_id)  # afresh: a message or an index entry may be stale
        if job is None:
            log.warning("archive request for an unknown job; dropped")
            return
        if job.job_status == JobStatus.ARCHIVED:
            if job.archive_state == DROP:  # a run killed after recording ARCHIVED
                self._finish(job)
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
            raise RetryLater(min(wait, MAX_REDELAY_S), "retention window not over yet")
        reference = self.backend.archive(job)
        if self.jobs.archive(job, reference, self.settings.users_table):
            log.info("results archived", extra=reference)
            self._finish(replace(job, **reference))
            return
        # Refused: the user upgraded, the window moved, or another run archived it first.
        self.discard_unrecorded(job.job_id, reference)

    def discard_unrecorded(self, job_id: str, reference: dict[str, str]) -> None:
        """Delete a cold copy this run made but could not record, unless the job's record
        points at it after all: a store that names copies by content (the emulator's
        vault does) gives two runs one name, and the recorded copy is never deleted."""
        current = self.jobs.get(job_id)
        if current is None:
            return
        if {name: getattr(current, name, None) for name in reference} == reference:
            log.info("archive refused; our copy is the recorded one, kept")
            return
        self.backend.delete(current, reference)
        log.info("archive refused; our cold copy removed")

    def _finish(self, job: Job) -> None:
        """After ARCHIVED is recorded: delete the other cold copies (of runs killed before
        recording theirs), then the hot copy, then leave the archive index."""
        pruned = self.backend.prune(job)
        if pruned:
            log.info("stray cold copies deleted", extra={"count": pruned})
        if job.s3_results_bucket and job.s3_key_result_file:
            self.files.delete(job.s3_results_bucket, job.s3_key_result_file)
        self.jobs.hot_copy_dropped(job.job_id)

    def sweep(self) -> None:
        """Everything the archive index lists as due (the messages' safety net)."""
        for job in self.jobs.due_for_archive(int(time.time())):
            with log_context(job_id=job.job_id, user_id=job.user_id):
                try:
                    self.archive_job(job.job_id)
                except RetryLater:
                    pass
                except Exception:
                    log.exception("sweep could not archive this job; it tries again next time")


def make_handler(settings: Settings) -> Handler:
    archiver = Archiver(settings)

    def handle(message: Message) -> None:
        archiver.archive_job(message.expect(ArchiveRequest).job_id)

    return handle


def sweeper(settings: Settings) -> tuple[float, Callable[[], None]]:
    return float(settings.archive_sweep_s), Archiver(settings).sweep


if __name__ == "__main__":
    command_line("python -m util.archive", __doc__).parse_args()
    serve("archive", lambda s: s.archive_queue, make_handler, every=sweeper)
