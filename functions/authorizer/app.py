"""Authorizer: a token → IAM policy for its scope. TOKEN (REST API, `Authorization: Bearer`) or REQUEST (the
WebSocket API's $connect, `?token=`)."""


from wattprint import auth, observability, tokens

logger = observability.logger("AuthorizerFunction")


@observability.handler(logger)
def handler(event, context):
    try:
        if event.get("type") == "REQUEST":
            token = (event.get("queryStringParameters") or {}).get("token")
            return auth.authorize_token(token, event["methodArn"], tokens.lookup)
        return auth.authorize(event.get("authorizationToken"), event["methodArn"], tokens.lookup)
    except auth.Unauthorized as error:
        logger.info("rejected", extra={"reason": str(error)})
        # API Gateway's contract: exactly this message means 401, anything else 500.
        raise Exception("Unauthorized") from None
