"""A user as stored: one item per user in the users table, and how an item reads back."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer


class Plan(StrEnum):
    FREE = "free_user"
    PREMIUM = "premium_user"


@dataclass(frozen=True)
class ApiToken:
    token_id: str
    name: str
    created_at: int


@dataclass(frozen=True)
class Login:
    """One browser login: the session cookie names it; logout or expiry ends it."""

    login_id: str
    started_at: int
    seen_at: int  # last request, to a minute or so (see UserStore.touch_login)


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    name: str
    institution: str = ""
    role: Plan = Plan.FREE
    created_at: int = 0
    api_tokens: tuple[ApiToken, ...] = field(default_factory=tuple)
    stripe_customer_id: str | None = None
    stripe_subscription_id: str | None = None  # the subscription that makes them premium
    stripe_events: frozenset[str] = frozenset()  # Stripe events already applied
    ended_subscriptions: frozenset[str] = frozenset()  # Stripe subscriptions over for good
    downgraded_at: int | None = None  # when they last became free again
    billing_notice: str | None = None  # e.g. a failed payment, shown on the profile
    logins: tuple[Login, ...] = ()  # live browser logins, oldest first
    # The minute each rate-limit counter last counted in, as read (see UserStore._take).
    rate_windows: tuple[tuple[str, int], ...] = ()

    def login(self, login_id: str) -> Login | None:
        return next((login for login in self.logins if login.login_id == login_id), None)

    @property
    def premium(self) -> bool:
        return self.role == Plan.PREMIUM


_deserializer = TypeDeserializer()


def decode(item: dict[str, Any]) -> dict[str, Any]:
    """An item as DynamoDB returns it, as plain Python values."""
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def parse_user(item: dict[str, Any]) -> User:
    tokens = sorted(
        (
            ApiToken(token_id, t["name"], int(t["created_at"]))
            for token_id, t in item.get("api_tokens", {}).items()
        ),
        key=lambda t: (t.created_at, t.token_id),
    )
    created = item.get("created_at", 0)
    return User(
        user_id=item["user_id"],
        email=item.get("email", ""),
        name=item.get("name", ""),
        institution=item.get("institution", ""),
        role=Plan(item.get("role", Plan.FREE)),
        created_at=int(created) if isinstance(created, Decimal | int) else 0,
        api_tokens=tuple(tokens),
        stripe_customer_id=item.get("stripe_customer_id"),
        stripe_subscription_id=item.get("stripe_subscription_id"),
        stripe_events=frozenset(item.get("stripe_events", ())),
        ended_subscriptions=frozenset(item.get("ended_subscriptions", ())),
        downgraded_at=int(item["downgraded_at"]) if "downgraded_at" in item else None,
        billing_notice=item.get("billing_notice"),
        logins=_logins(item.get("logins", {})),
        rate_windows=tuple(
            (key.removesuffix("_window"), int(value))
            for key, value in item.items()
            if key.endswith("_window")
        ),
    )


def _logins(entries: dict[str, Any]) -> tuple[Login, ...]:
    """Live logins, oldest first. An entry from before logins had times (a bare token
    list) counts as started at 0: long expired, so that session logs in again."""
    logins = [
        Login(login_id, int(e.get("started_at", 0)), int(e.get("seen_at", 0)))
        if isinstance(e, dict)
        else Login(login_id, 0, 0)
        for login_id, e in entries.items()
    ]
    return tuple(sorted(logins, key=lambda login: (login.started_at, login.login_id)))
