"""The stores the views use, built once per app from its settings."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from gas.billing import Billing
from gas.files import Files
from gas.jobs import JobStore
from gas.settings import Settings
from gas.submit import Submissions
from gas.users import UserStore
from gas.variants import VariantCache


@dataclass(frozen=True)
class Services:
    settings: Settings
    jobs: JobStore
    users: UserStore
    files: Files
    submissions: Submissions
    billing: Billing
    variants: VariantCache

    @classmethod
    def for_settings(cls, settings: Settings) -> Services:
        submissions = Submissions(settings)
        return cls(
            settings=settings,
            jobs=submissions.jobs,
            users=submissions.users,
            files=submissions.files,
            submissions=submissions,
            billing=Billing(settings),
            variants=VariantCache.for_settings(settings, submissions.files),
        )


def services() -> Services:
    """The current app's stores."""
    return current_app.extensions["gas"]
