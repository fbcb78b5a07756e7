"""Authorizer: a token → IAM policy for its scope. TOKEN (REST API, `Authorization: Bearer`) or REQUEST (the
WebSocket API's $connect, `?token=`)."""

from functools import partial

from aws_lambda_powertools import Logger

from wattprint import auth, db, tokens

logger = Logger()

# The db module's own `run` (autocommit, re-opens a dead connection) serves as the connection: one lookup
# needs no transaction.
_find = partial(tokens.find, db)


def handler(event, context):
    try:
        if event.get("type") == "REQUEST":
            token = (event.get("queryStringParameters") or {}).get("token")
            return auth.authorize_token(token, event["methodArn"], _find)
        return auth.authorize(event.get("authorizationToken"), event["methodArn"], _find)
    except auth.Unauthorized as error:
        logger.info("rejected", extra={"reason": str(error)})
        # API Gateway's contract: exactly this message means 401, anything else 500.
        raise Exception("Unauthorized") from None
