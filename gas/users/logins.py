"""Browser logins: the record on the user item that keeps a session cookie alive."""

from __future__ import annotations

from gas.users.table import UserTable


class Logins(UserTable):
    def remember_login(
        self, user_id: str, login_id: str, tokens: list[str], max_logins: int, now: int
    ) -> None:
        """Record a new login (with its Globus tokens, kept here rather than in the signed,
        readable session cookie, so logout can revoke them). The user's oldest logins are
        dropped beyond `max_logins`, so the item cannot grow without bound."""
        user = self.get(user_id)
        live = user.logins if user else ()
        dropped = [login.login_id for login in live[: max(0, len(live) + 1 - max_logins)]]
        names = {"#new": login_id} | {f"#d{i}": old for i, old in enumerate(dropped)}
        removal = " REMOVE " + ", ".join(f"logins.#d{i}" for i in range(len(dropped)))
        self.dynamodb.update_item(
            TableName=self.table,
            Key={"user_id": {"S": user_id}},
            UpdateExpression="SET logins.#new = :login" + (removal if dropped else ""),
            ConditionExpression="attribute_exists(logins)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                ":login": {
                    "M": {
                        "started_at": {"N": str(now)},
                        "seen_at": {"N": str(now)},
                        "tokens": {"L": [{"S": t} for t in tokens]},
                    }
                }
            },
        )

    def touch_login(self, user_id: str, login_id: str, now: int) -> bool:
        """Note that a login is in use (for the idle timeout); False if it is gone."""
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"user_id": {"S": user_id}},
                UpdateExpression="SET logins.#sid.seen_at = :now",
                ConditionExpression="attribute_exists(logins.#sid)",
                ExpressionAttributeNames={"#sid": login_id},
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def forget_login(self, user_id: str, login_id: str) -> list[str]:
        """End a login; its Globus tokens are returned (to revoke)."""
        response = self.dynamodb.update_item(
            TableName=self.table,
            Key={"user_id": {"S": user_id}},
            UpdateExpression="REMOVE logins.#sid",
            ConditionExpression="attribute_exists(logins)",
            ExpressionAttributeNames={"#sid": login_id},
            ReturnValues="UPDATED_OLD",
        )
        old = response.get("Attributes", {}).get("logins", {}).get("M", {}).get(login_id, {})
        tokens = old.get("M", {}).get("tokens", old)  # before started_at: a bare list
        return [t["S"] for t in tokens.get("L", [])]
