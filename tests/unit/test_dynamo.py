"""The one DynamoDB update builder: every name and value a placeholder, values serialized."""

from __future__ import annotations

import pytest

from gas.dynamo import update


def test_set_remove_add_and_a_condition_in_one_update() -> None:
    got = update(
        set={"role": "premium_user", "downgraded_at": 5},
        remove=("name",),
        add={"stripe_events": {"evt_1"}},
        condition="NOT contains(stripe_events, :id) AND #r = :r",
        names={"#r": "role"},
        values={":id": "evt_1", ":r": "free_user"},
    )
    assert got == {
        "UpdateExpression": "SET #s0 = :s0, #s1 = :s1 ADD #a0 :a0 REMOVE #r0",
        "ConditionExpression": "NOT contains(stripe_events, :id) AND #r = :r",
        "ExpressionAttributeNames": {
            "#r": "role", "#s0": "role", "#s1": "downgraded_at", "#a0": "stripe_events",
            "#r0": "name",
        },
        "ExpressionAttributeValues": {
            ":id": {"S": "evt_1"}, ":r": {"S": "free_user"}, ":s0": {"S": "premium_user"},
            ":s1": {"N": "5"}, ":a0": {"SS": ["evt_1"]},
        },
    }  # fmt: skip


def test_an_update_without_a_condition_or_values() -> None:
    assert update(remove=("a", "b")) == {
        "UpdateExpression": "REMOVE #r0, #r1",
        "ExpressionAttributeNames": {"#r0": "a", "#r1": "b"},
    }


def test_an_update_that_changes_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="must change something"):
        update(condition="attribute_exists(x)")


def test_a_condition_placeholder_may_not_collide_with_a_generated_one() -> None:
    with pytest.raises(ValueError, match="collides"):
        update(set={"a": 1}, condition="#s0 = :x", names={"#s0": "b"}, values={":x": 1})
