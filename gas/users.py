"""The user store: profiles, plans, personal API tokens and the submission rate limit.

One item per user in the users table. API tokens are stored only as SHA-256
hashes; the token a user copies is `gas.<user_id>.<token_id>.<secret>`, so
authenticating one is a single read. The rate limit is a fixed one-minute window
kept on the user item with conditional writes, so it holds across every web
process and instance.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer

from gas import aws
from gas.settings import Settings

if TYPE_CHECKING:
    from gas.jobs import Job, JobStore

TOKEN_PREFIX = "gas"
CUSTOMER_INDEX = "stripe_customer_index"


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


class UserStore:
    def __init__(self, settings: Settings) -> None:
        self.table = settings.users_table
        self.dynamodb = aws.client(settings, "dynamodb")

    def get(self, user_id: str) -> User | None:
        item = self._item(user_id)
        return _user(item) if item else None

    def get_with_job(
        self, user_id: str, jobs: JobStore, job_id: str
    ) -> tuple[User | None, Job | None]:
        """A user and a job in one round trip (a job's pages need both): one BatchGetItem
        of consistent reads, or two reads if DynamoDB leaves any key unprocessed."""
        response = self.dynamodb.batch_get_item(
            RequestItems={
                self.table: {"Keys": [{"user_id": {"S": user_id}}], "ConsistentRead": True},
                jobs.table: {"Keys": [{"job_id": {"S": job_id}}], "ConsistentRead": True},
            }
        )
        if response.get("UnprocessedKeys"):
            return self.get(user_id), jobs.get(job_id)
        found = response["Responses"]
        users, jobs_found = found.get(self.table, []), found.get(jobs.table, [])
        return (
            _user(_decode(users[0])) if users else None,
            jobs.parse(jobs_found[0]) if jobs_found else None,
        )

    def sign_in(self, user_id: str, email: str, name: str, institution: str = "") -> User:
        """The user behind a login: created as a free user the first time, and kept after.

        Later logins refresh the email (the identity provider owns it) but never overwrite
        the name and institution a user edited on their profile.
        """
        now = int(time.time())
        self.dynamodb.update_item(
            TableName=self.table,
            Key={"user_id": {"S": user_id}},
            UpdateExpression=(
                "SET email = :email, #name = if_not_exists(#name, :name), "
                "institution = if_not_exists(institution, :inst), "
                "#role = if_not_exists(#role, :free), "
                "created_at = if_not_exists(created_at, :now), "
                "api_tokens = if_not_exists(api_tokens, :none), "
                "logins = if_not_exists(logins, :none)"
            ),
            ExpressionAttributeNames={"#name": "name", "#role": "role"},
            ExpressionAttributeValues={
                ":email": {"S": email},
                ":name": {"S": name or email},
                ":inst": {"S": institution},
                ":free": {"S": str(Plan.FREE)},
                ":now": {"N": str(now)},
                ":none": {"M": {}},
            },
        )
        user = self.get(user_id)
        assert user is not None
        return user

    def update_profile(self, user_id: str, name: str, institution: str) -> None:
        self.dynamodb.update_item(
            TableName=self.table,
            Key={"user_id": {"S": user_id}},
            UpdateExpression="SET #name = :name, institution = :inst",
            ConditionExpression="attribute_exists(user_id)",
            ExpressionAttributeNames={"#name": "name"},
            ExpressionAttributeValues={":name": {"S": name}, ":inst": {"S": institution}},
        )

    # -- login sessions ---------------------------------------------------------------------

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

    # -- personal API tokens ----------------------------------------------------------------

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
        return _user(item)

    # -- plan (Stripe) ----------------------------------------------------------------------

    def become_premium(
        self, user_id: str, event_id: str, customer_id: str, subscription_id: str
    ) -> bool:
        """free -> premium for a Stripe event; False if that event was applied already."""
        return self._apply_event(
            user_id,
            event_id,
            sets={
                "#role": {"S": str(Plan.PREMIUM)},
                "stripe_customer_id": {"S": customer_id},
                "stripe_subscription_id": {"S": subscription_id},
            },
            remove=("billing_notice",),
        )

    def become_free(self, user_id: str, event_id: str, subscription_id: str, at: int) -> bool:
        """premium -> free because `subscription_id` ended; False if that event was applied
        already or it is not the user's current subscription (an older one's late event)."""
        return self._apply_event(
            user_id,
            event_id,
            sets={"#role": {"S": str(Plan.FREE)}, "downgraded_at": {"N": str(at)}},
            remove=("stripe_subscription_id",),
            also_require=("stripe_subscription_id", subscription_id),
        )

    def note_payment_failed(self, user_id: str, event_id: str, notice: str) -> bool:
        """Show `notice` on the profile; False if this event was applied already."""
        return self._apply_event(user_id, event_id, sets={"billing_notice": {"S": notice}})

    def find_by_customer(self, customer_id: str) -> User | None:
        items = self.dynamodb.query(
            TableName=self.table,
            IndexName=CUSTOMER_INDEX,
            KeyConditionExpression="stripe_customer_id = :c",
            ExpressionAttributeValues={":c": {"S": customer_id}},
        )["Items"]
        return self.get(items[0]["user_id"]["S"]) if items else None

    def _apply_event(
        self,
        user_id: str,
        event_id: str,
        sets: dict[str, dict[str, Any]],
        remove: tuple[str, ...] = (),
        also_require: tuple[str, str] | None = None,
    ) -> bool:
        """Apply `sets`/`remove` and record `event_id`, in one conditional write: an event
        changes a user once, however often Stripe (or anyone) delivers it."""
        values: dict[str, Any] = {":events": {"SS": [event_id]}, ":id": {"S": event_id}}
        assignments = []
        for i, (name, value) in enumerate(sets.items()):
            values[f":v{i}"] = value
            assignments.append(f"{name} = :v{i}")
        update = "SET " + ", ".join(assignments) + " ADD stripe_events :events"
        if remove:
            update += " REMOVE " + ", ".join(remove)
        # `role` is a DynamoDB reserved word; names the expression does not use are refused.
        names = {"ExpressionAttributeNames": {"#role": "role"}} if "#role" in update else {}
        condition = "attribute_exists(user_id) AND NOT contains(stripe_events, :id)"
        if also_require:
            condition += f" AND {also_require[0]} = :required"
            values[":required"] = {"S": also_require[1]}
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"user_id": {"S": user_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                **names,
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- submission rate limit -------------------------------------------------------------

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
        window = int(time.time()) // 60
        names = {"#w": f"{counter}_window", "#c": f"{counter}_count"}
        same_window = {
            "UpdateExpression": "SET #c = #c + :one",
            "ConditionExpression": "#w = :w AND #c < :limit",
            "ExpressionAttributeValues": {
                ":w": {"N": str(window)}, ":limit": {"N": str(per_minute)}, ":one": {"N": "1"},
            },
        }  # fmt: skip
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

    # -- helpers ---------------------------------------------------------------------------

    def _item(self, user_id: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName=self.table, Key={"user_id": {"S": user_id}}, ConsistentRead=True
        ).get("Item")
        return _decode(item) if item else None


_deserializer = TypeDeserializer()


def _decode(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


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


def _user(item: dict[str, Any]) -> User:
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
