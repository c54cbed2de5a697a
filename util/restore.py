"""Restore: brings back every archived result of a user who became premium.

For a restore message `{user_id}` (published when a subscription starts), pages
through the user's jobs (the user_id index): for each ARCHIVED one, requests a
retrieval (Expedited, else Standard), records RESTORING with its tier, and asks
thaw to follow it. A job already RESTORING gets a thaw message again: if an
earlier run was killed before sending one, this is how the job finishes.
"""

from __future__ import annotations

import logging

from gas import coldstorage
from gas.jobs import JobStatus, JobStore
from gas.log import log_context
from gas.messages import Bus, RestoreRequest
from gas.settings import Settings, command_line
from gas.users import UserStore
from gas.worker import Handler, Message, serve

log = logging.getLogger("util.restore")
FIRST_THAW_CHECK_S = 2


def make_handler(settings: Settings) -> Handler:
    jobs, users, bus = JobStore(settings), UserStore(settings), Bus(settings)
    backend = coldstorage.backend(settings)

    def handle(message: Message) -> None:
        user_id = message.expect(RestoreRequest).user_id
        user = users.get(user_id)
        if user is None or not user.premium:
            log.info("user is not premium (any more); nothing to restore")
            return
        cursor: str | None = None
        while True:
            page = jobs.list_for_user(user_id, limit=100, cursor=cursor)
            for listed in page.jobs:
                # The index is eventually consistent: a job archived a moment ago may still
                # be listed COMPLETED. Read each one afresh.
                job = jobs.get(listed.job_id) or listed
                with log_context(job_id=job.job_id):
                    if job.job_status == JobStatus.ARCHIVED:
                        restore = backend.request_restore(job)
                        if jobs.restoring(job.job_id, restore.tier, restore.restore_job_id):
                            log.info("restore requested", extra={"tier": restore.tier})
                        else:
                            continue
                    elif job.job_status != JobStatus.RESTORING:
                        continue
                    bus.thaw_later(job.job_id, user_id, attempt=0, delay_s=FIRST_THAW_CHECK_S)
            if not page.cursor:
                return
            cursor = page.cursor

    return handle


if __name__ == "__main__":
    command_line("python -m util.restore", __doc__).parse_args()
    serve("restore", lambda s: s.restore_queue, make_handler)
