"""DynamoDB update expressions, built one way.

Every attribute name and value becomes a placeholder, so reserved words (`role`,
`name`) and any value are safe; values are plain Python, serialized here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from boto3.dynamodb.types import TypeSerializer

_serializer = TypeSerializer()


def attr(value: Any) -> dict[str, Any]:
    """A plain Python value as a DynamoDB attribute value ({"S": ...}, {"N": ...}, ...)."""
    return _serializer.serialize(value)


def update(
    *,
    set: Mapping[str, Any] | None = None,
    remove: Iterable[str] = (),
    add: Mapping[str, Any] | None = None,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Keyword arguments of an UpdateItem (or a transaction's Update): SET each of `set`,
    REMOVE each of `remove`, ADD each of `add` (a number, or a set to merge), only if
    `condition` holds. The condition's own placeholders come in `names` (#x) and
    `values` (:x, plain Python); they must not look like generated ones (#s0, :a1, #r2)."""
    gen_names: dict[str, str] = {}
    gen_values: dict[str, Any] = {}
    clauses = []
    for verb, fields, sep in (("SET", set or {}, " = "), ("ADD", add or {}, " ")):
        parts = []
        for i, (name, value) in enumerate(fields.items()):
            key = f"{verb[0].lower()}{i}"
            gen_names[f"#{key}"], gen_values[f":{key}"] = name, attr(value)
            parts.append(f"#{key}{sep}:{key}")
        if parts:
            clauses.append(f"{verb} " + ", ".join(parts))
    removed = {f"#r{i}": name for i, name in enumerate(remove)}
    if removed:
        gen_names.update(removed)
        clauses.append("REMOVE " + ", ".join(removed))
    if not clauses:
        raise ValueError("an update must change something")
    names, values = dict(names or {}), {k: attr(v) for k, v in (values or {}).items()}
    if names.keys() & gen_names.keys() or values.keys() & gen_values.keys():
        raise ValueError("a condition placeholder collides with a generated one")
    kwargs: dict[str, Any] = {"UpdateExpression": " ".join(clauses)}
    if condition:
        kwargs["ConditionExpression"] = condition
    if names or gen_names:
        kwargs["ExpressionAttributeNames"] = {**names, **gen_names}
    if values or gen_values:
        kwargs["ExpressionAttributeValues"] = {**values, **gen_values}
    return kwargs
