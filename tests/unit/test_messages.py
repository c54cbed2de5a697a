"""Every message type reads back as itself; anything else is refused with its reason."""

from __future__ import annotations

import json

import pytest

from gas.messages import (
    TYPES,
    ArchiveRequest,
    JobRequest,
    JobResult,
    MalformedMessage,
    PaymentFailed,
    RestoreRequest,
    ThawCheck,
    decode,
    encode,
    expect,
)

EVERY = [
    JobRequest("j1", "u1"),
    JobResult("j1", "u1", "COMPLETED"),
    PaymentFailed("u1"),
    ArchiveRequest("j1", "u1"),
    RestoreRequest("u1"),
    ThawCheck("j1", "u1", attempt=3),
]


def test_every_type_round_trips_through_json() -> None:
    assert {type(m) for m in EVERY} == set(TYPES.values())
    for sent in EVERY:
        body = json.loads(json.dumps(encode(sent)))
        assert body["v"] == 1 and body["type"] == sent.TYPE
        assert decode(body) == sent


def test_the_type_may_come_from_the_sns_attribute() -> None:
    assert decode({"v": 1, "user_id": "u1"}, type_attribute="restore") == RestoreRequest("u1")


def test_an_optional_field_takes_its_default() -> None:
    assert decode({"type": "thaw", "job_id": "j", "user_id": "u"}) == ThawCheck("j", "u", 0)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([1, 2], "body is not a JSON object"),
        ("text", "body is not a JSON object"),
        ({"job_id": "j"}, "message without a type"),
        ({"type": "launch_missiles"}, "unknown message type 'launch_missiles'"),
        ({"type": ["job_request"]}, "unknown message type"),
        ({"type": "job_request", "user_id": "u"}, "job_request message without job_id"),
        ({"type": "job_request", "job_id": "", "user_id": "u"}, "bad job_id"),
        ({"type": "job_request", "job_id": 7, "user_id": "u"}, "bad job_id: '7'"),
        ({"type": "thaw", "job_id": "j", "user_id": "u", "attempt": "2"}, "bad attempt"),
        ({"type": "thaw", "job_id": "j", "user_id": "u", "attempt": True}, "bad attempt"),
    ],
)
def test_a_body_that_is_no_message_is_refused_with_why(body: object, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        decode(body)


def test_a_consumer_refuses_a_type_it_does_not_handle() -> None:
    assert expect(PaymentFailed("u"), JobResult, PaymentFailed) == PaymentFailed("u")
    with pytest.raises(MalformedMessage, match="a restore message is not handled here"):
        expect(RestoreRequest("u"), ArchiveRequest)
