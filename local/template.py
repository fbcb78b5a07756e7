"""Read template.yaml into what the local stack serves: functions, routes, authorizer, queues, triggers.

Everything the local stack does is derived from here, so a route or queue added to the template is served
locally without a second, hand-kept list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class _Tag:
    """A CloudFormation short-form intrinsic (!Ref, !GetAtt, !Sub …), kept as data."""

    def __init__(self, tag: str, value):
        self.tag, self.value = tag, value

    def __repr__(self) -> str:
        return f"{self.tag} {self.value!r}"


class _Loader(yaml.SafeLoader):
    pass


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return _Tag(suffix, value)


_Loader.add_multi_constructor("!", _construct)


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_dir: Path
    handler: str  # module.function
    environment: dict  # name → str or an unresolved intrinsic
    timeout: int
    memory: int


@dataclass(frozen=True)
class Route:
    method: str  # upper case, or ANY
    path: str  # "/events/{id}"
    function: str
    authorized: bool

    def pattern(self) -> re.Pattern:
        regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")


@dataclass(frozen=True)
class Authorizer:
    function: str
    header: str
    ttl: int
    validation: str | None = None  # Identity.ValidationExpression: other headers get 401 without a call

    def refuses(self, value: str) -> bool:
        return self.validation is not None and re.fullmatch(self.validation, value) is None


@dataclass(frozen=True)
class Queue:
    logical_id: str
    name: str
    visibility_timeout: int
    dead_letter: str | None  # logical id
    max_receive_count: int | None


@dataclass(frozen=True)
class SqsTrigger:
    function: str
    queue: str  # logical id
    batch_size: int
    report_failures: bool
    batching_window: int = 0  # MaximumBatchingWindowInSeconds


@dataclass(frozen=True)
class SocketRoute:
    key: str  # $connect, $disconnect, $default, or a value of the route selection expression
    function: str
    authorizer: str | None  # the REQUEST authorizer's function
    identity: tuple[str, ...] = ()  # its IdentitySource, e.g. ("route.request.querystring.token",)


@dataclass(frozen=True)
class Schedule:
    function: str
    seconds: int


@dataclass
class App:
    root: Path
    stage: str
    functions: dict[str, Function] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    authorizer: Authorizer | None = None
    gateway_responses: dict[str, dict] = field(default_factory=dict)
    queues: dict[str, Queue] = field(default_factory=dict)
    sqs_triggers: list[SqsTrigger] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)
    socket_routes: dict[str, SocketRoute] = field(default_factory=dict)  # the WebSocket API's, by route key
    socket_stage: str | None = None


def _ref(value) -> str | None:
    """The logical id named by !Ref X, !GetAtt X.Arn or their long forms."""
    if isinstance(value, _Tag):
        if value.tag == "Ref":
            return value.value
        if value.tag == "GetAtt":
            return value.value.split(".")[0] if isinstance(value.value, str) else value.value[0]
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "Ref":
            return inner
        if key == "Fn::GetAtt":
            return inner.split(".")[0] if isinstance(inner, str) else inner[0]
    return None


_LAMBDA_URI = re.compile(r"functions/\$\{(\w+)\.Arn\}/invocations")


def _uri_function(uri) -> str | None:
    """The function named by an API Gateway Lambda integration/authorizer URI (a !Sub string)."""
    text = uri.value if isinstance(uri, _Tag) else (uri.get("Fn::Sub") if isinstance(uri, dict) else uri)
    found = _LAMBDA_URI.search(text if isinstance(text, str) else "")
    return found.group(1) if found else None


def _websocket(app: App, resources: dict) -> None:
    """AWS::ApiGatewayV2 WEBSOCKET API: routes → integrations → functions, and REQUEST authorizers."""
    apis = {lid for lid, r in resources.items() if r.get("Type") == "AWS::ApiGatewayV2::Api"
            and r.get("Properties", {}).get("ProtocolType") == "WEBSOCKET"}
    if not apis:
        return
    of_type = lambda kind: {lid: r.get("Properties", {}) for lid, r in resources.items()  # noqa: E731
                            if r.get("Type") == kind and _ref(r.get("Properties", {}).get("ApiId")) in apis}
    integrations = {lid: _uri_function(p.get("IntegrationUri")) for lid, p in of_type("AWS::ApiGatewayV2::Integration").items()}
    authorizers = of_type("AWS::ApiGatewayV2::Authorizer")
    for props in of_type("AWS::ApiGatewayV2::Route").values():
        target = props.get("Target")
        target = target.value if isinstance(target, _Tag) else target
        integration = re.search(r"integrations/\$\{(\w+)\}", str(target))
        auth = authorizers.get(_ref(props.get("AuthorizerId"))) if props.get("AuthorizationType") == "CUSTOM" else None
        app.socket_routes[props["RouteKey"]] = SocketRoute(
            key=props["RouteKey"], function=integrations[integration.group(1)],
            authorizer=_uri_function(auth.get("AuthorizerUri")) if auth else None,
            identity=tuple(auth.get("IdentitySource") or ()) if auth else ())
    app.socket_stage = next((str(p.get("StageName")) for p in of_type("AWS::ApiGatewayV2::Stage").values()), "v1")


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def _rate_seconds(expression: str) -> int:
    match = _RATE.match(expression.strip())
    if not match:
        raise ValueError(f"the local stack understands rate(...) schedules, not {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def _resolve_int(value, parameters: dict) -> int:
    ref = _ref(value)
    return int(parameters[ref]) if ref else int(value)


def load(path: Path) -> App:
    path = Path(path)
    doc = yaml.load(path.read_text(), Loader=_Loader)
    resources = doc.get("Resources", {})
    globals_fn = doc.get("Globals", {}).get("Function", {})
    global_env = globals_fn.get("Environment", {}).get("Variables", {})
    parameters = {name: str(spec.get("Default", "")) for name, spec in doc.get("Parameters", {}).items()}
    apis = {lid: r for lid, r in resources.items() if r.get("Type") == "AWS::Serverless::Api"}
    app = App(root=path.parent, stage=next((str(r["Properties"].get("StageName", "v1")) for r in apis.values()),
                                           "v1"), parameters=parameters)

    for lid, res in resources.items():
        if res.get("Type") == "AWS::SQS::Queue":
            props = res.get("Properties", {})
            redrive = props.get("RedrivePolicy") or {}
            app.queues[lid] = Queue(
                logical_id=lid,
                name=props.get("QueueName") if isinstance(props.get("QueueName"), str) else lid,
                visibility_timeout=_resolve_int(props.get("VisibilityTimeout", 30), parameters),
                dead_letter=_ref(redrive.get("deadLetterTargetArn")) if redrive else None,
                max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
            )

    for api in apis.values():
        auth = api.get("Properties", {}).get("Auth", {})
        default = auth.get("DefaultAuthorizer")
        if default:
            spec = auth["Authorizers"][default]
            identity = spec.get("Identity", {})
            app.authorizer = Authorizer(
                function=_ref(spec["FunctionArn"]),
                header=identity.get("Header", "Authorization"),
                ttl=int(identity.get("ReauthorizeEvery", 300)),
                validation=identity.get("ValidationExpression"),
            )
        app.gateway_responses = api.get("Properties", {}).get("GatewayResponses", {}) or {}

    for lid, res in resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.get("Properties", {})
        env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        app.functions[lid] = Function(
            logical_id=lid,
            code_dir=(path.parent / props["CodeUri"]).resolve(),
            handler=props.get("Handler", globals_fn.get("Handler")),
            environment=env,
            timeout=int(props.get("Timeout", globals_fn.get("Timeout", 3))),
            memory=int(props.get("MemorySize", globals_fn.get("MemorySize", 128))),
        )
        for event in props.get("Events", {}).values():
            kind, ev = event.get("Type"), event.get("Properties", {})
            if kind == "Api":
                authorizer = (ev.get("Auth") or {}).get("Authorizer")
                app.routes.append(Route(method=ev["Method"].upper(), path=ev["Path"], function=lid,
                                        authorized=app.authorizer is not None and authorizer != "NONE"))
            elif kind == "SQS":
                app.sqs_triggers.append(SqsTrigger(
                    function=lid, queue=_ref(ev["Queue"]), batch_size=int(ev.get("BatchSize", 10)),
                    report_failures="ReportBatchItemFailures" in (ev.get("FunctionResponseTypes") or []),
                    batching_window=int(ev.get("MaximumBatchingWindowInSeconds", 0))))
            elif kind == "Schedule":
                app.schedules.append(Schedule(function=lid, seconds=_rate_seconds(ev["Schedule"])))
    _websocket(app, resources)
    return app
