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

from wattprint.errors import InvalidBody, PayloadTooLarge
from wattprint.http import inflate_gzip

from . import websocket
from .runtime import Functions
from .template import App, Route

log = logging.getLogger("local.apigw")

ACCOUNT, REGION, API_ID = "000000000000", "us-east-1", "local"
MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway REST's request limit
MAX_SOCKET_MESSAGE = 128 * 1024  # API Gateway WebSocket's message limit (@connections POST: 413 above it)

# API Gateway's own answers when the template does not override them (GatewayResponses).
_DEFAULT_RESPONSES = {
    "UNAUTHORIZED": (401, '{"message":$context.error.messageString}'),
    "ACCESS_DENIED": (403, '{"message":$context.error.messageString}'),
    "MISSING_AUTHENTICATION_TOKEN": (403, '{"message":$context.error.messageString}'),
    "AUTHORIZER_FAILURE": (500, '{"message":$context.error.messageString}'),
    "REQUEST_TOO_LARGE": (413, '{"message":$context.error.messageString}'),
    "UNSUPPORTED_MEDIA_TYPE": (415, '{"message":$context.error.messageString}'),
    "DEFAULT_5XX": (502, '{"message":$context.error.messageString}'),
}
_MESSAGES = {
    "UNAUTHORIZED": "Unauthorized",
    "ACCESS_DENIED": "User is not authorized to access this resource",
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
    "AUTHORIZER_FAILURE": None,
    "REQUEST_TOO_LARGE": "Request Too Long",
    "UNSUPPORTED_MEDIA_TYPE": "Unsupported Media Type",
    "DEFAULT_5XX": "Internal server error",
}
_FAMILY = {"UNAUTHORIZED": "DEFAULT_4XX", "ACCESS_DENIED": "DEFAULT_4XX", "REQUEST_TOO_LARGE": "DEFAULT_4XX",
           "UNSUPPORTED_MEDIA_TYPE": "DEFAULT_4XX",
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
        self.sockets: dict[str, "_Socket"] = {}  # the WebSocket API's open connections, by connection id
        self.domain = "127.0.0.1"

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
            if not token or self.app.authorizer.refuses(token):
                return self.gateway_response("UNAUTHORIZED", request_id)
            answer = self.authorize(token, self.method_arn(method, path))
            if isinstance(answer, str):
                return self.gateway_response(answer, request_id)
            authorizer_context = {"principalId": answer.get("principalId"), **(answer.get("context") or {})}

        # API Gateway inflates a gzip request before the integration sees it and passes the header on; a body that is
        # not the gzip it claims is its 415 (api-gateway-make-request-with-compressed-payload).
        if any(n.lower() == "content-encoding" and v.strip().lower() == "gzip" for n, v in headers):
            try:
                body = inflate_gzip(body, MAX_PAYLOAD)
            except PayloadTooLarge:
                return self.gateway_response("REQUEST_TOO_LARGE", request_id)
            except InvalidBody:
                return self.gateway_response("UNSUPPORTED_MEDIA_TYPE", request_id)
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


class _Socket:
    """One WebSocket connection's sending side (frames from the management API and from the reader's pongs)."""

    def __init__(self, wfile, connection: socket.socket):
        self.wfile, self.connection, self.lock = wfile, connection, threading.Lock()

    def send(self, opcode: int, payload: bytes) -> None:
        with self.lock:
            self.wfile.write(websocket.encode(opcode, payload, mask=False))
            self.wfile.flush()

    def close(self) -> None:
        """As API Gateway's DELETE @connections does: a close frame, then the connection ends whatever the client
        does (its reader sees the end and runs $disconnect)."""
        try:
            self.send(websocket.CLOSE, websocket.close_payload(1000))
        finally:
            self.connection.shutdown(socket.SHUT_RDWR)


class SocketGateway:
    """API Gateway's WebSocket API, from the template's AWS::ApiGatewayV2 resources: $connect with its REQUEST
    authorizer, $default for messages, $disconnect, and the management API (`@connections`) on the same port."""

    def __init__(self, gateway: Gateway):
        self.gw = gateway
        self.routes = gateway.app.socket_routes

    def _context(self, route_key: str, event_type: str, connection_id: str, authorizer=None) -> dict:
        now = int(time.time() * 1000)
        return {"routeKey": route_key, "eventType": event_type, "connectionId": connection_id,
                "domainName": self.gw.domain, "stage": self.gw.app.socket_stage, "apiId": API_ID,
                "requestId": str(uuid.uuid4()), "requestTimeEpoch": now, "connectedAt": now,
                "messageDirection": "IN", "authorizer": authorizer,
                "identity": {"sourceIp": "127.0.0.1"}}

    def _invoke(self, function: str, event: dict) -> dict:
        return self.gw.pool.submit(self.gw.functions.invoke, function, event).result()

    def connect(self, connection_id: str, query: dict, headers: dict) -> tuple[int, str]:
        """(HTTP status, body): 200 accepts the upgrade; otherwise the answer API Gateway gives."""
        route = self.routes["$connect"]
        authorizer = None
        if route.authorizer:
            wanted = [s.rsplit(".", 1)[1] for s in route.identity if s.startswith("route.request.querystring.")]
            if any(not query.get(name) for name in wanted):
                return 401, '{"message":"Unauthorized"}'  # identity source missing: the authorizer is not called
            arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{self.gw.app.socket_stage}/$connect"
            event = {"type": "REQUEST", "methodArn": arn, "queryStringParameters": query, "headers": headers,
                     "requestContext": self._context("$connect", "CONNECT", connection_id)}
            try:
                answer = self._invoke(route.authorizer, event)
            except Exception as error:  # noqa: BLE001 — the authorizer's contract is expressed by exceptions
                if str(error) == "Unauthorized":
                    return 401, '{"message":"Unauthorized"}'
                log.error("WebSocket authorizer failed:\n%s", traceback.format_exc())
                return 500, '{"message":null}'
            if not allows(answer.get("policyDocument", {}), arn):
                return 403, '{"message":"Forbidden"}'
            authorizer = {"principalId": answer.get("principalId"), **(answer.get("context") or {})}
        event = {"requestContext": self._context("$connect", "CONNECT", connection_id, authorizer),
                 "queryStringParameters": query or None, "headers": headers, "isBase64Encoded": False}
        try:
            result = self._invoke(route.function, event)
        except Exception:  # noqa: BLE001 — a crashing $connect refuses the connection, as on AWS
            log.error("$connect failed:\n%s", traceback.format_exc())
            return 500, '{"message":"Internal server error"}'
        status = int((result or {}).get("statusCode", 200)) if isinstance(result, dict) else 200
        return (200, "") if 200 <= status < 300 else (status, (result or {}).get("body") or "")

    def message(self, connection_id: str, data: str | bytes) -> None:
        route = self.routes.get("$default")  # the template's only other keys are $connect and $disconnect
        if route is None:
            # What API Gateway answers a message no route takes, without invoking anything.
            sock = self.gw.sockets.get(connection_id)
            if sock is not None:
                sock.send(websocket.TEXT, json.dumps({"message": "Forbidden", "connectionId": connection_id,
                                                      "requestId": str(uuid.uuid4())}).encode())
            return
        event = {"requestContext": self._context("$default", "MESSAGE", connection_id),
                 "body": data if isinstance(data, str) else base64.b64encode(data).decode(),
                 "isBase64Encoded": not isinstance(data, str)}
        try:
            self._invoke(route.function, event)
        except Exception:  # noqa: BLE001 — logged; the connection stays open, as on AWS
            log.error("$default failed:\n%s", traceback.format_exc())

    def disconnect(self, connection_id: str) -> None:
        route = self.routes.get("$disconnect")
        if route is None:
            return
        try:
            self._invoke(route.function, {"requestContext": self._context("$disconnect", "DISCONNECT", connection_id)})
        except Exception:  # noqa: BLE001 — API Gateway does not retry $disconnect either
            log.error("$disconnect failed:\n%s", traceback.format_exc())

    def manage(self, method: str, connection_id: str, body: bytes) -> int:
        """The management API: POST sends a message, DELETE closes; 410 Gone for a connection that is not open."""
        sock = self.gw.sockets.get(connection_id)
        if sock is None:
            return 410
        try:
            if method == "POST":
                if len(body) > MAX_SOCKET_MESSAGE:
                    return 413  # PayloadTooLargeException: nothing is sent
                sock.send(websocket.TEXT, body)
                return 200
            if method == "DELETE":
                sock.close()
                return 204
        except OSError:
            return 410
        return 405


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients of API Gateway get
    gateway: Gateway

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes; without this each answer waits on the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        sockets = SocketGateway(self.gateway) if self.gateway.app.socket_routes else None
        if sockets and self.headers.get("Upgrade", "").lower() == "websocket":
            return self._websocket(sockets)
        if sockets and self.path.startswith("/@connections/"):
            length = int(self.headers.get("Content-Length") or 0)
            status = sockets.manage(self.command, self.path.split("/", 2)[2], self.rfile.read(length) if length else b"")
            error = {410: "GoneException", 413: "PayloadTooLargeException"}.get(status)
            body = b"" if status < 300 else json.dumps({"message": error or "error"}).encode()
            self.send_response(status)
            if error:
                self.send_header("x-amzn-ErrorType", error)  # what boto3 maps to its exception classes
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None
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

    def _websocket(self, sockets: "SocketGateway") -> None:
        self.close_connection = True
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        connection_id = uuid.uuid4().hex[:16]
        status, body = sockets.connect(connection_id, query, dict(self.headers.items()))
        if status != 200:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", websocket.accept_key(self.headers.get("Sec-WebSocket-Key", "")))
        self.end_headers()
        self.wfile.flush()
        sock = self.gateway.sockets[connection_id] = _Socket(self.wfile, self.connection)
        try:
            while True:
                sockets.message(connection_id, websocket.read_message(self.rfile, True, sock.send))
        except websocket.Closed:
            try:
                sock.send(websocket.CLOSE, websocket.close_payload(1000))
            except OSError:
                pass  # the client is gone already
        except (websocket.ProtocolError, OSError) as error:
            log.info("WebSocket %s ended: %s", connection_id, error)
        finally:
            self.gateway.sockets.pop(connection_id, None)
            sockets.disconnect(connection_id)

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
    gateway.domain = f"{host}:{server.server_address[1]}"
    return server
