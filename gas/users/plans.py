"""The user's plan as Stripe changes it: each event applied once (a ledger of event ids
on the user item), and the customer index that finds a user from a Stripe customer."""

from __future__ import annotations

from typing import Any

from gas import dynamo
from gas.users.model import Plan, User
from gas.users.table import UserTable

CUSTOMER_INDEX = "stripe_customer_index"


class PlanLedger(UserTable):
    def become_premium(
        self, user_id: str, event_id: str, customer_id: str, subscription_id: str
    ) -> bool:
        """free -> premium for a Stripe event; False if that event was applied already, or
        `subscription_id` has ended (Stripe retries events for days, in no order: a late one
        about a deleted subscription must not make anyone premium again)."""
        return self._apply_event(
            user_id,
            event_id,
            sets={
                "role": str(Plan.PREMIUM),
                "stripe_customer_id": customer_id,
                "stripe_subscription_id": subscription_id,
            },
            remove=("billing_notice",),
            never_ended=subscription_id,
        )

    def become_free(
        self, user_id: str, event_id: str, subscription_id: str, at: int, final: bool = True
    ) -> bool:
        """premium -> free because `subscription_id` ended (`final`: for good, canceled;
        else it may be paid up again); False if that event was applied already or it is not
        the user's current subscription (an older one's late event)."""
        return self._apply_event(
            user_id,
            event_id,
            sets={"role": str(Plan.FREE), "downgraded_at": at},
            remove=("stripe_subscription_id",),
            ended=subscription_id if final else None,
            also_require=("stripe_subscription_id", subscription_id),
        )

    def note_payment_failed(self, user_id: str, event_id: str, notice: str) -> bool:
        """Show `notice` on the profile; False if this event was applied already."""
        return self._apply_event(user_id, event_id, sets={"billing_notice": notice})

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
        sets: dict[str, Any],
        remove: tuple[str, ...] = (),
        also_require: tuple[str, str] | None = None,
        ended: str | None = None,
        never_ended: str | None = None,
    ) -> bool:
        """Apply `sets`/`remove` and record `event_id`, in one conditional write: an event
        changes a user once, however often Stripe (or anyone) delivers it. `ended` records a
        subscription as over for good; `never_ended` requires one not to be."""
        condition = "attribute_exists(user_id) AND NOT contains(stripe_events, :id)"
        names, values = {}, {":id": event_id}
        added: dict[str, Any] = {"stripe_events": {event_id}}
        if also_require:
            condition += " AND #required = :required"
            names["#required"], values[":required"] = also_require
        if ended:
            added["ended_subscriptions"] = {ended}
        if never_ended:
            condition += " AND NOT contains(ended_subscriptions, :ended)"
            values[":ended"] = never_ended
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"user_id": {"S": user_id}},
                **dynamo.update(
                    set=sets,
                    remove=remove,
                    add=added,
                    condition=condition,
                    names=names,
                    values=values,
                ),
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True
