"""REST API TOKEN authorizer: Bearer token → IAM policy for the token's scope (cached by API Gateway)."""

from functools import partial

from aws_lambda_powertools import Logger

from wattprint import auth, db, tokens

logger = Logger()

# The db module's own `run` (autocommit, re-opens a dead connection) serves as the connection: one lookup
# needs no transaction.
_find = partial(tokens.find, db)


def handler(event, context):
    try:
        return auth.authorize(event.get("authorizationToken"), event["methodArn"], _find)
    except auth.Unauthorized as error:
        logger.info("rejected", extra={"reason": str(error)})
        # API Gateway's contract: exactly this message means 401, anything else 500.
        raise Exception("Unauthorized") from None
