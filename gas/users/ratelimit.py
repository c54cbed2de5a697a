"""Per-user rate limits: a fixed one-minute window per counter, kept on the user item
with conditional writes, so it holds across every web process and instance."""

from __future__ import annotations

import time

from gas.users.model import User
from gas.users.table import UserTable

WINDOW_S = 60


def seconds_to_next_window(now: float | None = None) -> int:
    """How long until a refused request may be tried again: the next window (1 to 60 s)."""
    return WINDOW_S - int(time.time() if now is None else now) % WINDOW_S


class RateLimits(UserTable):
    def take_submission(self, user: User, per_minute: int) -> bool:
        """Count one job submission; False when the user already made `per_minute` this minute."""
        return self._take(user, "submit", per_minute)

    def take_upload_form(self, user: User, per_minute: int) -> bool:
        """Count one upload form (a presigned POST); False past `per_minute` this minute."""
        return self._take(user, "form", per_minute)

    def _take(self, user: User, counter: str, per_minute: int) -> bool:
        """A fixed one-minute window per counter, on the user item: conditional writes, so
        it holds across every web process and instance. The write tried first is the one
        the user item (as the request read it) says will succeed: one call, usually."""
        window = int(time.time()) // WINDOW_S
        names = {"#w": f"{counter}_window", "#c": f"{counter}_count"}
        same_window = {
            "UpdateExpression": "SET #c = #c + :one",
            "ConditionExpression": "#w = :w AND #c < :limit",
            "ExpressionAttributeValues": {
                ":w": {"N": str(window)},
                ":limit": {"N": str(per_minute)},
                ":one": {"N": "1"},
            },
        }
        new_window = {
            "UpdateExpression": "SET #w = :w, #c = :one",
            "ConditionExpression": "attribute_not_exists(#w) OR #w < :w",
            "ExpressionAttributeValues": {":w": {"N": str(window)}, ":one": {"N": "1"}},
        }
        attempts = [same_window, new_window]
        if dict(user.rate_windows).get(counter) != window:
            attempts.reverse()
        for attempt in attempts:
            try:
                self.dynamodb.update_item(
                    TableName=self.table,
                    Key={"user_id": {"S": user.user_id}},
                    ExpressionAttributeNames=names,
                    **attempt,
                )
                return True
            except self.dynamodb.exceptions.ConditionalCheckFailedException:
                continue
        return False
