"""The users table, which every concern of the user store reads and writes."""

from __future__ import annotations

from typing import Any

from gas import aws
from gas.settings import Settings
from gas.users.model import User, decode, parse_user


class UserTable:
    """One item per user; each concern (profiles, logins, tokens, plans, rate limits)
    is a class of its own over this table, and `UserStore` is all of them."""

    def __init__(self, settings: Settings) -> None:
        self.table = settings.users_table
        self.dynamodb = aws.client(settings, "dynamodb")

    def get(self, user_id: str) -> User | None:
        item = self._item(user_id)
        return parse_user(item) if item else None

    def _item(self, user_id: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName=self.table, Key={"user_id": {"S": user_id}}, ConsistentRead=True
        ).get("Item")
        return decode(item) if item else None
