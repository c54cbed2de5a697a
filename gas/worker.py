"""The one long-poll worker loop every GAS daemon runs.

A daemon is a handler for one message plus `serve(...)`. The loop:
- long-polls its queue (20 s) for up to 10 messages, never holding more than it
  can work on soon (`batch_size`), so other instances of the daemon get the rest;
- calls the handler once per message on `concurrency` threads;
- deletes a message when its handler returns, and leaves it when the handler
  raises: it becomes visible again after the queue's visibility timeout, and the
  queue's redrive policy moves it to the dead-letter queue after 5 receives;
- keeps every held message invisible while it waits or runs (a heartbeat that
  extends the visibility timeout), so a long job is never delivered twice;
- on SIGTERM/SIGINT stops receiving at once (an open long poll is abandoned),
  hands back messages it has not started, finishes the ones in flight, exits 0.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, NoReturn

from botocore.exceptions import ClientError

from gas import aws
from gas.log import configure_logging, log_context
from gas.messages import MalformedMessage, P, decode, expect
from gas.settings import SQS_MAX_BATCH, Settings, SettingsError, load_settings

log = logging.getLogger(__name__)

WAIT_TICK_S = 0.2  # how often a wait re-checks for a stop request
MISSING_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


@dataclass(frozen=True)
class Message:
    """One received SQS message, its JSON body already parsed."""

    message_id: str
    receipt_handle: str
    body: dict[str, Any]
    receive_count: int
    attributes: dict[str, str] = field(default_factory=dict)
    malformed: str | None = None  # why the body could not be parsed, if it could not

    def expect(self, *kinds: type[P]) -> P:
        """The body as one of the message types the handler acts on (gas/messages.py);
        MalformedMessage, which dead-letters it, if it is not one of them."""
        if self.malformed:
            raise MalformedMessage(self.malformed)
        return expect(decode(self.body, self.attributes.get("type")), *kinds)


Handler = Callable[[Message], None]


class RetryLater(Exception):
    """Raised by a handler: not now, ask me again in `seconds` (not a failure: no error log)."""

    def __init__(self, seconds: int, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason


class _AbandonPoll(BaseException):
    """Raised by the signal handler to abandon an open long poll (not an Exception:
    botocore's retry logic must not catch it)."""


@dataclass
class _Held:
    message_id: str
    receipt_handle: str
    future: Future[None] | None = None


class Worker:
    """Runs `handler` for each message of `queue_name` until asked to stop."""

    def __init__(
        self,
        settings: Settings,
        queue_name: str,
        handler: Handler,
        *,
        concurrency: int = 1,
        batch_size: int | None = None,
        wait_s: int | None = None,
        periodic: tuple[float, Callable[[], None]] | None = None,
    ) -> None:
        self.settings = settings
        self.queue_name = queue_name
        self.handler = handler
        self.concurrency = concurrency
        self.batch_size = min(SQS_MAX_BATCH, batch_size or settings.worker_batch_size)
        self.wait_s = settings.worker_wait_s if wait_s is None else wait_s
        self.shutdown_grace_s = settings.shutdown_grace_s
        self.periodic = periodic
        self.sqs = aws.client(settings, "sqs")
        self.stopping = threading.Event()
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._visibility = threading.Lock()  # one visibility change (batch) at a time
        self._polling = False
        self._finished = threading.Event()
        self.queue_url = ""
        self.visibility_timeout_s = settings.queue_visibility_timeout_s

    # -- lifecycle -------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop receiving; in-flight messages finish. Safe from any thread and from a signal
        handler: it takes no lock (the interrupted code may hold one); waits time out."""
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the loop; a long poll in progress is abandoned."""

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("%s received: stopping", signal.Signals(signum).name)
            self.request_stop()
            if self._polling:
                raise _AbandonPoll

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def run(self) -> None:
        """Poll and handle until stopped, then drain what is in flight."""
        with log_context(queue=self.queue_name):
            try:
                self._connect()
            except aws.Stopped:
                log.info("stopped before the queue was reachable")
                return
            log.info(
                "worker started",
                extra={
                    "concurrency": self.concurrency,
                    "batch_size": self.batch_size,
                    "visibility_timeout_s": self.visibility_timeout_s,
                },
            )
            heartbeat = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
            heartbeat.start()
            if self.periodic:
                threading.Thread(target=self._every, name="periodic", daemon=True).start()
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="handler") as pool:
                while not self.stopping.is_set():
                    room = self._wait_for_room()
                    try:
                        messages = self._poll(room) if room else []
                    except _AbandonPoll:
                        messages = []
                    for message in messages:
                        self._start(pool, message)
                self._hand_back_unstarted()
                self._drain()
            self._finished.set()
            log.info("worker stopped")

    # -- receiving -------------------------------------------------------------------------

    def _connect(self) -> None:
        def resolve() -> None:
            self.queue_url = self.sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
            self.visibility_timeout_s = int(attrs["VisibilityTimeout"])

        aws.retry_until_reachable(
            resolve,
            f"queue {self.queue_name}",
            self.settings,
            stop=self.stopping,
            retry_codes=MISSING_QUEUE,
        )

    def _wait_for_room(self) -> int:
        """How many messages we may take now; waits while every slot is held."""
        with self._lock:
            while len(self._held) >= self.batch_size and not self.stopping.is_set():
                self._slot_freed.wait(WAIT_TICK_S)
            return 0 if self.stopping.is_set() else self.batch_size - len(self._held)

    def _poll(self, room: int) -> list[Message]:
        """One long poll. A signal during it raises _AbandonPoll (see install_signal_handlers)."""
        try:
            self._polling = True
            if self.stopping.is_set():
                return []
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=room,
                WaitTimeSeconds=self.wait_s,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (*aws.UNREACHABLE, ClientError) as exc:
            self._recover(exc)
            return []
        finally:
            self._polling = False
        return [_parse(raw) for raw in response.get("Messages", [])]

    def _recover(self, exc: Exception) -> None:
        """A receive failed: wait (with backoff inside), re-resolving a vanished queue."""
        log.warning("receive failed: %s", exc, extra={"error": type(exc).__name__})
        try:
            if aws.error_code(exc) in MISSING_QUEUE or isinstance(exc, aws.UNREACHABLE):
                self._connect()
            else:
                self.stopping.wait(next(aws.backoff_delays(base=1)))
        except aws.Stopped:
            pass

    # -- handling --------------------------------------------------------------------------

    def _start(self, pool: ThreadPoolExecutor, message: Message) -> None:
        held = _Held(message.message_id, message.receipt_handle)
        with self._lock:
            self._held[message.receipt_handle] = held
        held.future = pool.submit(self._handle, message)

    def _handle(self, message: Message) -> None:
        body = message.body
        with log_context(
            queue=self.queue_name,
            message_id=message.message_id,
            job_id=body.get("job_id"),
            user_id=body.get("user_id"),
        ):
            started = time.monotonic()
            try:
                if message.malformed:
                    raise MalformedMessage(message.malformed)
                self.handler(message)
            except RetryLater as later:
                with self._visibility:  # not to be undone by a heartbeat in flight
                    self._release(message)
                    self._set_visibility([message.receipt_handle], later.seconds)
                log.info("message postponed: %s", later.reason, extra={"retry_in_s": later.seconds})
            except Exception:
                log.exception(
                    "handler failed; message left for redelivery",
                    extra={"receive_count": message.receive_count},
                )
            else:
                self._delete(message)
                log.info(
                    "message handled",
                    extra={"duration_ms": round((time.monotonic() - started) * 1000, 1)},
                )
            finally:
                self._release(message)

    def _release(self, message: Message) -> None:
        with self._lock:
            self._held.pop(message.receipt_handle, None)
            self._slot_freed.notify_all()

    def _delete(self, message: Message) -> None:
        aws.retry_until_reachable(
            lambda: self.sqs.delete_message(
                QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle
            ),
            f"delete of message {message.message_id}",
            self.settings,
        )

    # -- visibility ------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        """Keep every held message invisible while it waits or runs."""
        interval = max(1.0, self.visibility_timeout_s / 3)
        while not self._finished.wait(interval):
            # Under the visibility lock, so a handle released meanwhile (postponed, handed
            # back) is not extended again after its own visibility change.
            with self._visibility:
                with self._lock:
                    handles = list(self._held)
                self._set_visibility(handles, self.visibility_timeout_s)

    def _drain(self) -> None:
        """Let handlers in flight finish within the grace period, else hand their messages
        back and leave: the process exits, its threads (and children) with it."""
        deadline = time.monotonic() + self.shutdown_grace_s
        with self._lock:
            while self._held and time.monotonic() < deadline:
                self._slot_freed.wait(min(WAIT_TICK_S, max(0.0, deadline - time.monotonic())))
            abandoned = list(self._held)
        if abandoned:
            with self._visibility:
                self._set_visibility(abandoned, 0)
            log.warning(
                "grace period over: handed back messages still in flight",
                extra={"count": len(abandoned), "grace_s": self.shutdown_grace_s},
            )
            logging.shutdown()
            os._exit(0)

    def _every(self) -> None:
        """Run the daemon's periodic task (a sweep) until the worker stops."""
        interval, task = self.periodic  # type: ignore[misc]
        while not self.stopping.wait(interval):
            with log_context(queue=self.queue_name, task=getattr(task, "__name__", "periodic")):
                try:
                    task()
                except Exception:
                    log.exception("periodic task failed; it runs again in %.0f s", interval)

    def _hand_back_unstarted(self) -> None:
        """Make messages we received but never started visible to others at once."""
        with self._visibility:
            with self._lock:
                unstarted = [h for h in self._held.values() if h.future and h.future.cancel()]
                for held in unstarted:
                    del self._held[held.receipt_handle]
            if unstarted:
                self._set_visibility([h.receipt_handle for h in unstarted], 0)
        if unstarted:
            log.info("handed back unstarted messages", extra={"count": len(unstarted)})

    def _set_visibility(self, handles: list[str], seconds: int) -> None:
        for start in range(0, len(handles), SQS_MAX_BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": seconds}
                for i, h in enumerate(handles[start : start + SQS_MAX_BATCH])
            ]
            try:
                result = self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url, Entries=entries
                )
            except (ClientError, *aws.UNREACHABLE) as exc:
                log.warning("visibility change failed: %s", exc)
                continue
            for failure in result.get("Failed", []):
                # Expected for a message handled (and deleted) meanwhile; anything else (a
                # timeout past SQS's 12 h limit) an operator should see.
                gone = failure.get("Code") in ("ReceiptHandleIsInvalid", "MessageNotInflight")
                log.log(
                    logging.DEBUG if gone else logging.WARNING,
                    "visibility change refused: %s",
                    failure,
                )


def _parse(raw: dict[str, Any]) -> Message:
    text = raw.get("Body", "")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    malformed = None
    if not isinstance(body, dict):
        body, malformed = {}, f"body is not a JSON object: {text[:200]!r}"
    attributes = {
        name: value["StringValue"]
        for name, value in raw.get("MessageAttributes", {}).items()
        if "StringValue" in value
    }
    return Message(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        body=body,
        receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
        attributes=attributes,
        malformed=malformed,
    )


def serve(
    process: str,
    queue: Callable[[Settings], str],
    make_handler: Callable[[Settings], Handler],
    *,
    concurrency: Callable[[Settings], int] = lambda _: 1,
    batch_size: Callable[[Settings], int | None] = lambda _: None,
    every: Callable[[Settings], tuple[float, Callable[[], None]]] | None = None,
) -> NoReturn:
    """Entry point of a daemon: settings, logging, signals, then the loop until stopped."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.exit(f"{process}: configuration error: {exc}")
    configure_logging(process, settings.log_level)
    worker = Worker(
        settings,
        queue(settings),
        make_handler(settings),
        concurrency=concurrency(settings),
        batch_size=batch_size(settings),
        periodic=every(settings) if every else None,
    )
    worker.install_signal_handlers()
    worker.run()
    sys.exit(0)
