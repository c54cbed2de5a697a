"""The emulator keeps what DynamoDB guarantees and GAS relies on (devstack/emulator.py)."""

from __future__ import annotations

import contextlib
import threading

from gas import aws


def test_a_refused_transaction_loses_no_concurrent_write(settings):
    """moto restores a copy of the tables a refused transaction touched, taken when it
    started; run alone, a write landing meanwhile was undone (10 of 200 here)."""
    dynamodb = aws.client(settings, "dynamodb")
    table = "isolation"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(200):  # a table worth copying: the copy takes a while
        dynamodb.put_item(TableName=table, Item={"k": {"S": f"old{i}"}, "v": {"S": "x" * 200}})
    stop = threading.Event()

    def refused() -> None:
        while not stop.is_set():
            with contextlib.suppress(dynamodb.exceptions.TransactionCanceledException):
                dynamodb.transact_write_items(
                    TransactItems=[{"Update": {
                        "TableName": table, "Key": {"k": {"S": "t"}},
                        "UpdateExpression": "SET n = :one",
                        "ConditionExpression": "attribute_exists(never)",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }}]
                )  # fmt: skip

    refusers = [threading.Thread(target=refused) for _ in range(2)]
    for thread in refusers:
        thread.start()
    try:
        for i in range(150):
            dynamodb.put_item(TableName=table, Item={"k": {"S": f"new{i}"}})
    finally:
        stop.set()
        for thread in refusers:
            thread.join()
    lost = [
        i
        for i in range(150)
        if "Item" not in dynamodb.get_item(TableName=table, Key={"k": {"S": f"new{i}"}})
    ]
    assert lost == [], f"{len(lost)} of 150 writes were undone by a refused transaction"
