"""Job outcome metrics in CloudWatch: what the failure-rate alarm of the AWS deployment reads.

Each job that reaches COMPLETED or FAILED is counted once, by the process whose conditional
write made the transition (a re-announcement of an outcome is not counted again). Counting
is best effort: a metric that cannot be sent is logged, never a reason to fail a job.
"""

from __future__ import annotations

import logging

from botocore.exceptions import ClientError

from gas import aws
from gas.settings import Settings

log = logging.getLogger(__name__)

OUTCOME_METRICS = {"COMPLETED": "JobsCompleted", "FAILED": "JobsFailed"}


def count_outcome(settings: Settings, status: str) -> None:
    """Count one job that just became `status` (COMPLETED or FAILED)."""
    try:
        aws.client(settings, "cloudwatch").put_metric_data(
            Namespace=settings.metrics_namespace,
            MetricData=[{"MetricName": OUTCOME_METRICS[status], "Value": 1, "Unit": "Count"}],
        )
    except (ClientError, *aws.UNREACHABLE) as exc:
        log.warning("job outcome not counted in CloudWatch: %s", exc)
