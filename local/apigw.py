"""A local stand-in for API Gateway's REST API: routes, TOKEN authorizer, gateway responses, proxy events.

It builds the same `AWS_PROXY` (payload 1.0) events AWS builds and calls the handlers in-process through a
fixed pool of workers, each standing in for one warm Lambda instance.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from .runtime import Functions
from .template import App, Route

log = logging.getLogger("local.apigw")

ACCOUNT, REGION, API_ID = "000000000000", "us-east-1", "local"
MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway REST's request limit

# API Gateway's own answers when the template does not override them (GatewayResponses).
_DEFAULT_RESPONSES = {
    "UNAUTHORIZED": (401, '{"message":$context.error.messageString}'),
    "ACCESS_DENIED": (403, '{"message":$context.error.messageString}'),
    "MISSING_AUTHENTICATION_TOKEN": (403, '{"message":$context.error.messageString}'),
    "AUTHORIZER_FAILURE": (500, '{"message":$context.error.messageString}'),
    "REQUEST_TOO_LARGE": (413, '{"message":$context.error.messageString}'),
    "DEFAULT_5XX": (502, '{"message":$context.error.messageString}'),
}
_MESSAGES = {
    "UNAUTHORIZED": "Unauthorized",
    "ACCESS_DENIED": "User is not authorized to access this resource",
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
    "AUTHORIZER_FAILURE": None,
    "REQUEST_TOO_LARGE": "Request Too Long",
    "DEFAULT_5XX": "Internal server error",
}
_FAMILY = {"UNAUTHORIZED": "DEFAULT_4XX", "ACCESS_DENIED": "DEFAULT_4XX", "REQUEST_TOO_LARGE": "DEFAULT_4XX",
           "MISSING_AUTHENTICATION_TOKEN": "DEFAULT_4XX", "AUTHORIZER_FAILURE": "DEFAULT_5XX"}


def allows(policy_document: dict, method_arn: str) -> bool:
    """Evaluate an authorizer's policy for one method ARN as API Gateway does (an explicit Deny wins)."""
    allowed = False
    for statement in policy_document.get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        # In execute-api ARNs `*` matches any run of characters, slashes included.
        if any(fnmatchcase(method_arn, pattern.replace("[", "[[]")) for pattern in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _specificity(route: Route) -> tuple:
    # API Gateway prefers literal path segments over {param}, and {param} over {proxy+}.
    segments = route.path.strip("/").split("/")
    return tuple(2 if "+}" in s else 1 if s.startswith("{") else 0 for s in segments), route.method == "ANY"


class Gateway:
    def __init__(self, app: App, functions: Functions, workers: int = 8):
        self.app = app
        self.functions = functions
        self.routes = sorted(app.routes, key=_specificity)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lambda")
        self._auth_cache: dict[str, tuple[float, dict]] = {}
        self._auth_lock = threading.Lock()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    # --- gateway responses -------------------------------------------------------------------------
    def gateway_response(self, kind: str, request_id: str, message: str | None = None) -> Reply:
        status, template = _DEFAULT_RESPONSES[kind]
        spec = self.app.gateway_responses.get(kind) or self.app.gateway_responses.get(_FAMILY.get(kind, ""))
        headers = [("Content-Type", "application/json")]
        if spec:
            status = int(spec.get("StatusCode", status))
            template = (spec.get("ResponseTemplates") or {}).get("application/json", template)
            for name, value in ((spec.get("ResponseParameters") or {}).get("Headers") or {}).items():
                headers.append((name, str(value).strip("'")))
        text = message if message is not None else _MESSAGES[kind]
        body = (template.replace("$context.error.messageString", json.dumps(text))
                .replace("$context.error.message", text or "")
                .replace("$context.requestId", request_id))
        return Reply(status, headers, body.encode())

    # --- routing and auth --------------------------------------------------------------------------
    def match(self, method: str, path: str) -> tuple[Route, dict] | None:
        for route in self.routes:
            found = route.pattern().match(path)
            if found and route.method in (method, "ANY"):
                return route, found.groupdict()
        return None

    def method_arn(self, method: str, path: str) -> str:
        return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{self.app.stage}/{method}{path}"

    def authorize(self, token: str, method_arn: str) -> dict | str:
        """The authorizer's policy answer, or the gateway response kind to send instead."""
        now = time.monotonic()
        with self._auth_lock:
            cached = self._auth_cache.get(token)
        if cached and cached[0] > now:
            answer = cached[1]
        else:
            event = {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
            try:
                answer = self.pool.submit(self.functions.invoke, self.app.authorizer.function, event).result()
            except Exception as error:  # noqa: BLE001 — the authorizer's contract is expressed by exceptions
                if str(error) == "Unauthorized":
                    return "UNAUTHORIZED"
                log.error("authorizer failed:\n%s", traceback.format_exc())
                return "AUTHORIZER_FAILURE"
            if self.app.authorizer.ttl > 0:
                with self._auth_lock:
                    self._auth_cache[token] = (now + self.app.authorizer.ttl, answer)
        if not allows(answer.get("policyDocument", {}), method_arn):
            return "ACCESS_DENIED"
        return answer

    # --- one request -------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
               source_ip: str = "127.0.0.1") -> Reply:
        request_id = str(uuid.uuid4())
        if len(body) > MAX_PAYLOAD:
            return self.gateway_response("REQUEST_TOO_LARGE", request_id)
        url = urlsplit(target)
        path = url.path or "/"
        matched = self.match(method, path)
        if matched is None:
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", request_id)
        route, path_params = matched

        single, multi = {}, {}
        for name, value in headers:
            single[name] = value
            multi.setdefault(name, []).append(value)
        authorizer_context = None
        if route.authorized:
            lower = {k.lower(): v for k, v in single.items()}
            token = lower.get(self.app.authorizer.header.lower())
            if not token:
                return self.gateway_response("UNAUTHORIZED", request_id)
            answer = self.authorize(token, self.method_arn(method, path))
            if isinstance(answer, str):
                return self.gateway_response(answer, request_id)
            authorizer_context = {"principalId": answer.get("principalId"), **(answer.get("context") or {})}

        query = parse_qsl(url.query, keep_blank_values=True)
        q_single, q_multi = {}, {}
        for name, value in query:
            q_single[name] = value
            q_multi.setdefault(name, []).append(value)
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
        event = {
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": single or None,
            "multiValueHeaders": multi or None,
            "queryStringParameters": q_single or None,
            "multiValueQueryStringParameters": q_multi or None,
            "pathParameters": path_params or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": ACCOUNT, "apiId": API_ID, "resourceId": "local", "stage": self.app.stage,
                "resourcePath": route.path, "httpMethod": method, "path": f"/{self.app.stage}{path}",
                "requestId": request_id, "requestTimeEpoch": int(time.time() * 1000), "protocol": "HTTP/1.1",
                "identity": {"sourceIp": source_ip, "userAgent": single.get("User-Agent")},
                "authorizer": authorizer_context,
            },
            "body": text if body else None,
            "isBase64Encoded": is_b64,
        }
        try:
            result = self.pool.submit(self.functions.invoke, route.function, event).result()
        except Exception:  # noqa: BLE001 — a crashing handler is a 502 on API Gateway too
            log.error("%s failed on %s %s:\n%s", route.function, method, path, traceback.format_exc())
            return self.gateway_response("DEFAULT_5XX", request_id)
        return self._proxy_reply(result, request_id)

    def _proxy_reply(self, result, request_id: str) -> Reply:
        if not isinstance(result, dict) or "statusCode" not in result:
            log.error("malformed Lambda proxy response: %r", result)
            return self.gateway_response("DEFAULT_5XX", request_id)
        headers = list((result.get("headers") or {}).items())
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((name, v) for v in values)
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        return Reply(int(result["statusCode"]), headers, raw)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients of API Gateway get
    gateway: Gateway

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes; without this each answer waits on the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        reply = self.gateway.handle(self.command, self.path, list(self.headers.items()), body,
                                    self.client_address[0])
        self.send_response(reply.status)
        skip = {"content-length", "connection", "transfer-encoding"}
        for name, value in reply.headers:
            if name.lower() not in skip:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, fmt, *args):
        log.info("%s %s", self.address_string(), fmt % args)


def serve(gateway: Gateway, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"gateway": gateway})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
