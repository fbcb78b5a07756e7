"""The service's CloudWatch metrics: Powertools Metrics in embedded metric format (a JSON line on stdout that
CloudWatch Logs turns into metrics), one namespace for the whole service.

Every metric is in namespace NAMESPACE with the single dimension service=SERVICE, which is what template.yaml's
alarms name; both are fixed here, not taken from the environment, so an alarm cannot silently stop matching. Code
adds metrics with the functions below; a handler that can add any is decorated with `@metrics.log_metrics`,
which writes them once per invocation (also when it raises).
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "wattprint"
SERVICE = "wattprint"

# A clustering run marked failed, whatever the cause: permanent bad data, an unexpected error (SQS retries it), or
# attempts exhausted (wattprint.runs.MAX_ATTEMPTS). Alarmed on (RunsFailedAlarm), as the dead-letter queue is.
RUNS_FAILED = "RunsFailed"

metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# Most invocations have nothing to report (no run failed): that is the good case, not worth a warning each time.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def runs_failed(count: int = 1) -> None:
    if count > 0:
        metrics.add_metric(name=RUNS_FAILED, unit=MetricUnit.Count, value=count)
