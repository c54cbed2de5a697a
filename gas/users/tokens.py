"""Personal API tokens, stored only as SHA-256 hashes.

The token a user copies is `gas.<user_id>.<token_id>.<secret>`, so authenticating
one is a single read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from gas.users.model import ApiToken, User, parse_user
from gas.users.table import UserTable

TOKEN_PREFIX = "gas"


class ApiTokens(UserTable):
    def create_api_token(self, user_id: str, name: str) -> tuple[ApiToken, str]:
        """A new token; its plaintext is returned once and never stored."""
        token = ApiToken(secrets.token_hex(8), name, int(time.time()))
        secret = secrets.token_urlsafe(32)
        self.dynamodb.update_item(
            TableName=self.table,
            Key={"user_id": {"S": user_id}},
            UpdateExpression="SET api_tokens.#id = :token",
            ConditionExpression="attribute_exists(api_tokens)",
            ExpressionAttributeNames={"#id": token.token_id},
            ExpressionAttributeValues={":token": _token_attr(token, secret)},
        )
        return token, f"{TOKEN_PREFIX}.{user_id}.{token.token_id}.{secret}"

    def revoke_api_token(self, user_id: str, token_id: str) -> None:
        self.dynamodb.update_item(
            TableName=self.table,
            Key={"user_id": {"S": user_id}},
            UpdateExpression="REMOVE api_tokens.#id",
            ConditionExpression="attribute_exists(api_tokens)",
            ExpressionAttributeNames={"#id": token_id},
        )

    def authenticate(self, plaintext: str) -> User | None:
        """The user a bearer token belongs to, or None for anything not a live token."""
        # Parsed from the right: token ids and secrets never hold a dot, user ids might.
        prefix, _, rest = plaintext.partition(".")
        parts = rest.rsplit(".", 2)
        if prefix != TOKEN_PREFIX or len(parts) != 3 or not all(parts):
            return None
        user_id, token_id, secret = parts
        item = self._item(user_id)
        stored = (item or {}).get("api_tokens", {}).get(token_id)
        if not stored or not hmac.compare_digest(stored["hash"], _hash(secret)):
            return None
        return parse_user(item)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _token_attr(token: ApiToken, secret: str) -> dict[str, Any]:
    return {
        "M": {
            "name": {"S": token.name},
            "created_at": {"N": str(token.created_at)},
            "hash": {"S": _hash(secret)},
        }
    }
