"""Profiles: who a user is (created at the first login) and what they may edit."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gas.users.model import Plan, User, decode, parse_user
from gas.users.table import UserTable

if TYPE_CHECKING:
    from gas.jobs import Job, JobStore


class Profiles(UserTable):
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
            parse_user(decode(users[0])) if users else None,
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
