"""SQS (the push queue): posts live messages to dashboard connections through API Gateway's management API.

The only function outside the VPC: the management endpoint is public and the VPC has no NAT. It touches no
database; each message is {"endpoint", "connections", "messages"} from the live function, and connections
found gone are announced back on the live queue for the live function to forget.
"""

import json

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from wattprint import observability
from wattprint.live import service as live

logger = observability.logger("PushFunction")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record, lambda_context=None):
    gone = live.push(json.loads(record.body))
    logger.info("live messages posted", extra={"gone": len(gone)})
    return gone


@observability.handler(logger, sqs=True)
def handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
