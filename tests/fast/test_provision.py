"""A whole account, provisioned as `python -m gas provision` does it on AWS: everything the plan
names is made once, and a second run changes nothing."""

from __future__ import annotations

from gas import aws
from gas.provision import plan, provision
from tests.fast.conftest import fast_settings


def test_an_empty_account_is_provisioned_whole_and_a_second_run_changes_nothing():
    settings = fast_settings()
    first = provision(settings, report=lambda _change: None)
    assert first and all(change.action in ("created", "updated") for change in first)
    p = plan(settings)
    sqs = aws.client(settings, "sqs")
    queues = {url.rsplit("/", 1)[-1] for url in sqs.list_queues()["QueueUrls"]}
    assert queues == {q.name for q in p.queues} | {f"{q.name}-dlq" for q in p.queues}
    tables = aws.client(settings, "dynamodb").list_tables()["TableNames"]
    assert sorted(tables) == sorted(t.name for t in p.tables)
    buckets = aws.client(settings, "s3").list_buckets()["Buckets"]
    assert sorted(b["Name"] for b in buckets) == sorted(p.buckets)
    again = provision(settings, report=lambda _change: None)
    assert [(c.kind, c.name) for c in again] == [(c.kind, c.name) for c in first]
    assert {c.action for c in again} == {"unchanged"}
