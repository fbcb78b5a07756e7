"""Load and invoke the template's handlers in-process, as the Lambda runtime would."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from .template import Function


@dataclass
class Context:
    """The parts of the Lambda context object our handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "local"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


class Functions:
    """Each function's handler module, imported once per thread (its cold start) and reused by that thread (warm).

    A Lambda instance runs one invocation at a time, and handler modules keep per-invocation state at module level
    (Powertools' resolver holds the current event on its `app`). The local stack invokes from several threads at
    once, so each thread stands for one instance and gets its own copy of the module.
    """

    def __init__(self, functions: dict[str, Function]):
        self._functions = functions
        self._handlers: dict[tuple[str, int], Callable] = {}
        self._lock = threading.Lock()

    def handler(self, logical_id: str) -> Callable:
        key = (logical_id, threading.get_ident())
        with self._lock:
            if key not in self._handlers:
                fn = self._functions[logical_id]
                module_name, _, attr = fn.handler.rpartition(".")
                path = fn.code_dir / (module_name.replace(".", "/") + ".py")
                # Every function's module is called app.py: give each (function, instance) a unique name.
                unique = f"wattprint_fn_{logical_id}_{key[1]}"
                spec = importlib.util.spec_from_file_location(unique, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[unique] = module
                spec.loader.exec_module(module)
                self._handlers[key] = getattr(module, attr)
            return self._handlers[key]

    def invoke(self, logical_id: str, event: dict):
        fn = self._functions[logical_id]
        context = Context(function_name=logical_id, memory_limit_in_mb=fn.memory, timeout_seconds=fn.timeout)
        return self.handler(logical_id)(event, context)
