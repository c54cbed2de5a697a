"""Notify: emails the user when their job ends (once), or when a payment failed.

For each job result it reads the job and the user, sends one email through SES
(subject and body name the input file and the outcome, link to the job page,
and give the reason of a failure), then records `notified_at`. A job already
notified is skipped, so a repeated result message sends nothing. SES errors
raise: the message is retried and dead-lettered after 5 receives.

Two deliveries at once: the first takes a lease (NOTIFY_LEASE_S) and sends; the other
comes back when the lease is over, and sends only if nothing was recorded by then (the
first sender died or lost the network before sending). Once sent, the record is written
whatever the network does. The one window left is a sender killed between SES
accepting the email and the record: the user then gets it twice, never zero times.
"""

from __future__ import annotations

import functools
import logging

from gas import aws
from gas.jobs import Job, JobStatus, JobStore
from gas.messages import JobResult, PaymentFailed
from gas.settings import Settings, command_line
from gas.users import UserStore
from gas.worker import Handler, Message, RetryLater, serve

log = logging.getLogger("util.notify")
# Longer than a send takes, shorter than the queue's visibility timeout: a sender that died
# holding the lease lets the message's next delivery send.
NOTIFY_LEASE_S = 30


def compose(job: Job, web_url: str) -> tuple[str, str]:
    """Subject and plain-text body of the email about `job`'s outcome."""
    link = f"{web_url.rstrip('/')}/annotations/{job.job_id}"
    # An ARCHIVED (or RESTORING) job completed: its archive may simply have run first.
    if job.job_status == JobStatus.FAILED:
        subject = f"GAS: annotation of {job.input_file_name} FAILED"
        outcome = f"The annotation of {job.input_file_name} failed: {job.error}"
    else:
        subject = f"GAS: annotation of {job.input_file_name} COMPLETED"
        variants = f" ({job.variant_count} variants)" if job.variant_count is not None else ""
        outcome = f"The annotation of {job.input_file_name} is complete{variants}."
    status = "FAILED" if job.job_status == JobStatus.FAILED else "COMPLETED"
    body = f"{outcome}\n\nStatus: {status}\nDetails and downloads: {link}\n\n— GAS\n"
    return subject, body


def make_handler(settings: Settings) -> Handler:
    jobs, users = JobStore(settings), UserStore(settings)
    ses = aws.client(settings, "ses")

    def send(to: str, subject: str, body: str) -> None:
        ses.send_email(
            Source=settings.ses_sender,
            Destination={"ToAddresses": [to]},
            Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": body}}},
        )

    def payment_failed(notice: PaymentFailed) -> None:
        user = users.get(notice.user_id)
        if user is None or not user.email:
            log.warning("no email address for this user; nothing sent")
            return
        link = f"{settings.web_url.rstrip('/')}/profile"
        send(
            user.email,
            "GAS: your subscription payment failed",
            f"{user.billing_notice or 'Your last subscription payment failed.'}\n\n"
            f"Manage your subscription: {link}\n\n— GAS\n",
        )
        log.info("user told of a failed payment")

    def handle(message: Message) -> None:
        received = message.expect(JobResult, PaymentFailed)
        if isinstance(received, PaymentFailed):
            payment_failed(received)
            return
        job = jobs.get(received.job_id)
        if job is None:
            log.warning("result for an unknown job; dropped")
            return
        if job.job_status in (JobStatus.PENDING, JobStatus.RUNNING):
            log.info("job is %s, not finished; dropped", job.job_status)
            return
        # A lease, not a check: two deliveries handled at once must not both send.
        if not jobs.lease_notification(job.job_id, NOTIFY_LEASE_S):
            if job.notified_at is not None:
                log.info("user already notified; dropped")
                return
            # Another sender holds the lease: it may send, or have died (or lost the network)
            # before sending. Dropping this delivery would lose the email then: look again
            # once its lease is over.
            raise RetryLater(NOTIFY_LEASE_S, "another delivery holds the notification lease")
        user = users.get(job.user_id)
        if user is None or not user.email:
            log.warning("no email address for the job's user; nothing sent")
            return
        try:
            send(user.email, *compose(job, settings.web_url))
        except Exception:
            release = functools.partial(jobs.release_notification, job.job_id)
            aws.retry_until_reachable(release, "release of the notification lease", settings)
            raise
        # Sent: record it whatever the network does meanwhile, or the lease's end sends again.
        marked = functools.partial(jobs.mark_notified, job.job_id)
        aws.retry_until_reachable(marked, "record of the notification", settings)
        log.info("user notified", extra={"status": job.job_status})

    return handle


if __name__ == "__main__":
    command_line("python -m util.notify", __doc__).parse_args()
    serve("notify", lambda s: s.notifications_queue, make_handler)
