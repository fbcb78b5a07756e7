"""The local stack's background threads must not shadow threading.Thread's own attributes: a Thread subclass
that set `self._stop` (an Event) broke `threading._after_fork` in every process forked while it ran."""

import threading
from types import SimpleNamespace

from local.sqs import Scheduler, SqsPoller


class _Client:
    def get_queue_attributes(self, **_):
        return {"Attributes": {"QueueArn": "arn:aws:sqs:us-east-1:000000000000:q"}}


def test_background_threads_add_no_attribute_a_thread_already_has():
    plain = set(vars(threading.Thread()))
    threads = [SqsPoller(_Client(), "http://q", SimpleNamespace(function="F"), None, "us-east-1"),
               Scheduler(SimpleNamespace(function="G"), None)]
    for thread in threads:
        added = set(vars(thread)) - plain
        assert not added & set(dir(threading.Thread)), type(thread).__name__
