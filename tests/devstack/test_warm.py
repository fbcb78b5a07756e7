"""The local stack warms its queue-triggered functions at start (issue 18): a poller initialises its function (the
cluster handler imports scikit-learn) before the first message, so the first clustering run is like later ones."""

import sys


def test_a_poller_initialises_its_function_before_any_message(local_stack):
    pollers = {thing.trigger.function: thing for kind, thing in local_stack.started if kind == "poller"}
    cluster = pollers["ClusterFunction"]
    assert cluster.initialised.wait(120)
    assert ("ClusterFunction", cluster.ident) in cluster.functions._handlers  # in its own thread, no message sent
    assert "sklearn.cluster" in sys.modules


def test_without_warm_nothing_is_initialised_until_a_message_comes(tmp_path, monkeypatch):
    from local.stack import Stack
    from tests.conftest import ROOT, STACK_VARIABLES
    from wattprint import db

    for name in STACK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    db.reset()
    stack = Stack(template=ROOT / "template.yaml", data_dir=tmp_path, port=0, warm=False)
    stack.start()
    try:
        cluster = next(thing for kind, thing in stack.started if kind == "poller"
                       and thing.trigger.function == "ClusterFunction")
        assert cluster.initialised.wait(60)
        assert ("ClusterFunction", cluster.ident) not in cluster.functions._handlers
    finally:
        stack.stop()
        db.reset()
