"""The worker loop every daemon runs, on a queue of this process's moto, its handlers steered
by the test: deleted when handled, redelivered when they raise, dead-lettered when they always
do, kept invisible while they run, and a stop that finishes what runs and hands back the rest.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from gas import aws
from gas.log import JsonFormatter
from gas.messages import Bus, JobRequest
from gas.settings import Settings
from gas.worker import Message, RetryLater, Worker
from tests.conftest import wait_until
from tests.fast.conftest import fast_settings, provision_parts
from tests.queues import Queue


def queue_settings(**overrides: str) -> Settings:
    """Settings (and the 20 s long poll of every daemon) with the annotators' job request
    queue, its dead-letter queue and its topic provisioned."""
    s = fast_settings(**overrides)
    return provision_parts(s, queues=(s.job_requests_queue,))


@pytest.fixture
def quick() -> Settings:
    """A failed message is back after 1 s, and dead-lettered on its third receive."""
    return queue_settings(GAS_QUEUE_VISIBILITY_TIMEOUT_S="1", GAS_QUEUE_MAX_RECEIVE_COUNT="2")


class Calls:
    """What the handler was called with, in order: (event, n, receive count)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, int]] = []

    def note(self, event: str, message: Message) -> None:
        self.events.append((event, message.body.get("n"), message.receive_count))

    def of(self, event: str) -> list[tuple[str, Any, int]]:
        return [e for e in self.events if e[0] == event]


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def log_lines() -> Iterator[list[dict]]:
    """The worker's log lines as a daemon writes them (JSON, with the message's context)."""
    lines: list[dict] = []
    formatter = JsonFormatter("test")

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(formatter.format(record)))

    handler = Collect()
    logger = logging.getLogger("gas.worker")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def serve(w: Worker, scenario: Callable[[], None]) -> None:
    """Run the worker's loop in this (the main) thread, as a daemon runs it, while `scenario`
    runs on another; then SIGTERM, as systemd stops a daemon. A failure of the scenario is
    raised here once the loop has returned."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    w.install_signal_handlers()
    failures: list[BaseException] = []

    def drive() -> None:
        try:
            scenario()
        except BaseException as exc:
            failures.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=drive, name="scenario", daemon=True)
    thread.start()
    try:
        w.run()
    finally:
        thread.join(timeout=60)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    if failures:
        raise failures[0]


@contextmanager
def running(w: Worker) -> Iterator[Worker]:
    """A second worker, on a thread of its own, asked to stop (and gone) at the end."""
    thread = threading.Thread(target=w.run, name="second-worker", daemon=True)
    thread.start()
    try:
        yield w
    finally:
        w.request_stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the worker did not stop"


def worker(settings: Settings, handler: Callable[[Message], None], **options: Any) -> Worker:
    return Worker(settings, settings.job_requests_queue, handler, **options)


# -- handling ---------------------------------------------------------------------------------


def test_handled_messages_are_deleted(quick, calls):
    queue = Queue(quick)
    for n in range(3):
        queue.send(n=n)

    def scenario() -> None:
        wait_until(lambda: len(calls.of("done")) == 3, what="three messages handled")
        wait_until(lambda: queue.depth() == (0, 0), what="an empty queue")

    serve(worker(quick, lambda m: calls.note("done", m)), scenario)
    assert sorted(n for _, n, _ in calls.events) == [0, 1, 2]
    assert {count for _, _, count in calls.events} == {1}


def test_a_published_job_request_reaches_the_handler_whole(quick):
    seen: list[Message] = []
    Bus(quick).job_requested("job-1", "user-1")
    serve(worker(quick, seen.append), lambda: wait_until(lambda: seen, what="the job request"))
    [message] = seen
    assert message.body == {"v": 1, "type": "job_request", "job_id": "job-1", "user_id": "user-1"}
    assert message.expect(JobRequest) == JobRequest("job-1", "user-1")
    assert message.malformed is None


def test_a_failed_message_is_redelivered_after_its_visibility_timeout(quick, calls, log_lines):
    queue = Queue(quick)
    queue.send(n=1, job_id="job-7", user_id="user-7")

    def handle(message: Message) -> None:
        calls.note("start", message)
        if message.receive_count == 1:
            raise RuntimeError("failing as asked")
        calls.note("done", message)

    def scenario() -> None:
        wait_until(lambda: calls.of("done"), what="the retry to succeed")
        wait_until(lambda: queue.depth() == (0, 0), what="the message deleted")

    serve(worker(quick, handle), scenario)
    assert calls.events == [("start", 1, 1), ("start", 1, 2), ("done", 1, 2)]
    [failure] = [line for line in log_lines if line["level"] == "error"]
    assert failure["msg"] == "handler failed; message left for redelivery"
    assert (failure["job_id"], failure["user_id"], failure["queue"]) == (
        "job-7",
        "user-7",
        quick.job_requests_queue,
    )
    assert "failing as asked" in failure["exc"]


def test_a_poison_message_is_dead_lettered_after_its_last_receive(quick, calls, log_lines):
    queue = Queue(quick)
    queue.send(n=1)
    queue.send_raw("this is not json")

    def handle(message: Message) -> None:
        calls.note("start", message)
        raise RuntimeError("always failing")

    def scenario() -> None:
        wait_until(lambda: len(queue.dead_letters()) == 2, what="both in the DLQ")

    serve(worker(quick, handle), scenario)
    assert queue.dead_letters() == sorted(['{"v": 1, "n": 1}', "this is not json"])
    assert queue.depth() == (0, 0)
    # The handler saw the poison message once per receive the queue allows, and never the
    # body that is not JSON: that one fails without it.
    assert calls.events == [("start", 1, 1), ("start", 1, 2)]
    malformed = [line for line in log_lines if "not a JSON object" in line.get("exc", "")]
    assert len(malformed) == quick.queue_max_receive_count


def test_a_handler_may_ask_for_its_message_later_without_failing(quick, calls, log_lines):
    queue = Queue(quick)
    queue.send(n=1)

    def handle(message: Message) -> None:
        calls.note("start", message)
        if message.receive_count == 1:
            raise RetryLater(1, "not due yet")
        calls.note("done", message)

    def scenario() -> None:
        wait_until(lambda: calls.of("done"), what="the second delivery")
        wait_until(lambda: queue.depth() == (0, 0), what="the message deleted")

    started = time.monotonic()
    serve(worker(quick, handle), scenario)
    assert time.monotonic() - started >= 1
    assert calls.events == [("start", 1, 1), ("start", 1, 2), ("done", 1, 2)]
    assert [line for line in log_lines if line["level"] == "error"] == []
    assert any(line["msg"] == "message postponed: not due yet" for line in log_lines)


def test_handlers_run_side_by_side_up_to_the_concurrency(quick):
    queue = Queue(quick)
    queue.send(n=1)
    queue.send(n=2)
    both_running = threading.Barrier(2, timeout=10)
    done: list[int] = []

    def handle(message: Message) -> None:
        both_running.wait()  # breaks (and the handler raises) unless the other one runs too
        done.append(message.body["n"])

    serve(
        worker(quick, handle, concurrency=2),
        lambda: wait_until(lambda: len(done) == 2, what="both handled"),
    )
    assert sorted(done) == [1, 2]


def test_a_long_handler_keeps_its_message_invisible_to_other_workers():
    # Visibility timeout 2 s, a handler of 4 s, and a second worker polling all along: without
    # the heartbeat the message would be delivered to it after 2 s.
    settings = queue_settings(GAS_QUEUE_VISIBILITY_TIMEOUT_S="2")
    queue = Queue(settings)
    queue.send(n=1)
    starts: list[str] = []
    finished = threading.Event()

    def handler(name: str) -> Callable[[Message], None]:
        def handle(_message: Message) -> None:
            starts.append(name)
            time.sleep(4)
            finished.set()

        return handle

    def scenario() -> None:
        wait_until(lambda: starts, what="the long handler to start")
        with running(worker(settings, handler("second"), wait_s=1)):
            wait_until(finished.is_set, timeout=20, what="the long handler to finish")
            wait_until(lambda: queue.depth() == (0, 0), what="the message deleted")

    serve(worker(settings, handler("first")), scenario)
    assert starts == ["first"]


def test_a_periodic_task_runs_alongside_and_survives_its_failures(quick):
    runs: list[int] = []

    def sweep() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("the first sweep fails")

    serve(
        worker(quick, lambda _m: None, periodic=(0.1, sweep)),
        lambda: wait_until(lambda: len(runs) >= 3, what="three sweeps"),
    )


# -- stopping ---------------------------------------------------------------------------------


def test_sigterm_finishes_the_message_in_flight_and_hands_back_the_rest_at_once():
    # A visibility timeout of a minute: what is handed back must be visible at once.
    settings = queue_settings(GAS_QUEUE_VISIBILITY_TIMEOUT_S="60")
    queue = Queue(settings)
    for n in range(3):
        queue.send(n=n)
    started, release = threading.Event(), threading.Event()
    handled: list[int] = []

    def handle(message: Message) -> None:
        started.set()
        release.wait(20)
        handled.append(message.body["n"])

    def scenario() -> None:
        wait_until(started.is_set, what="the first handler to start")
        wait_until(lambda: queue.depth() == (0, 3), what="all three held by the worker")
        os.kill(os.getpid(), signal.SIGTERM)
        wait_until(lambda: queue.depth() == (2, 1), what="the two not started handed back")
        release.set()
        wait_until(lambda: queue.depth() == (2, 0), what="the one in flight handled")

    serve(worker(settings, handle), scenario)
    assert len(handled) == 1  # the others never started


def test_sigterm_while_idle_abandons_the_long_poll(quick, log_lines):
    settings = quick
    assert settings.worker_wait_s == 20

    def scenario() -> None:
        wait_until(lambda: any(line["msg"] == "worker started" for line in log_lines))
        time.sleep(0.5)  # inside the 20 s long poll

    started = time.monotonic()
    serve(worker(settings, lambda _m: None), scenario)  # returns: the poll was abandoned
    assert time.monotonic() - started < 10  # had it waited for the poll to end, 20 s
    assert log_lines[-1]["msg"] == "worker stopped"


def test_a_worker_started_before_its_queue_exists_waits_for_it(calls):
    settings = fast_settings()
    sqs = aws.client(settings, "sqs")

    def scenario() -> None:
        time.sleep(0.3)  # the worker is retrying: no queue yet
        url = sqs.create_queue(QueueName="gas-made-later")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"v": 1, "n": 1}))
        wait_until(lambda: calls.of("done"), what="the message handled once the queue exists")

    serve(Worker(settings, "gas-made-later", lambda m: calls.note("done", m)), scenario)


def test_sigterm_before_the_queue_exists_ends_the_wait(log_lines):
    settings = fast_settings()
    started = time.monotonic()
    serve(Worker(settings, "gas-never-made", lambda _m: None), lambda: time.sleep(0.2))
    assert time.monotonic() - started < 5
    assert log_lines[-1]["msg"] == "stopped before the queue was reachable"


def test_a_message_of_another_type_is_refused_and_dead_letters(quick, log_lines):
    """A handler reads its message as the types it handles; anything else can never succeed,
    so it fails each receive (and, on the queue, dead-letters) with the reason logged."""
    queue = Queue(quick)
    queue.send(type="restore", user_id="user-1")  # a restore request on the job queue
    handled: list[JobRequest] = []

    def handle(message: Message) -> None:
        handled.append(message.expect(JobRequest))

    serve(
        worker(quick, handle),
        lambda: wait_until(
            lambda: [line for line in log_lines if line["level"] == "error"], what="the refusal"
        ),
    )
    assert handled == []
    [failure] = [line for line in log_lines if line["level"] == "error"][:1]
    assert "a restore message is not handled here" in json.dumps(failure)
