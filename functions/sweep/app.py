"""Placeholder until the session writes this handler."""


def handler(event, context):
    raise NotImplementedError
