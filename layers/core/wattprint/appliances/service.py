"""Use cases of appliance states (non-intrusive load monitoring), one entry function each; the handler, the
command line and the live decoder call these. See decode.py for the method and its limits."""

from __future__ import annotations

from dataclasses import dataclass

from .. import db
from ..errors import PayloadTooLarge, UnknownAppliance, UnsupportedMediaType
from . import decode, model, recording, store

# The limits the API documents (wattprint.report.openapi reads them here).
COLUMNS, MAX_ROWS = recording.COLUMNS, recording.MAX_ROWS
MAX_STATES, MIN_ROWS = model.MAX_STATES, model.MIN_ROWS
MAX_WORK = decode.MAX_WORK

CSV_TYPES = ("text/csv",)
#: Lambda's own request limit is 6 MB; a day of 1 s rows is about 3 MB.
MAX_BODY_BYTES = 6_000_000


def _check_body(body: str, content_type: str | None) -> None:
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in CSV_TYPES:
        raise UnsupportedMediaType(f"send the recording as text/csv, not {media or 'no Content-Type'}")
    if len(body.encode()) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the recording is over {MAX_BODY_BYTES} bytes: split it")


def _model_json(learnt: model.ApplianceModel, updated_at: str) -> dict:
    return {**learnt.to_json(), "updated_at": updated_at}


def train(name: str, body: str, content_type: str | None = "text/csv", states: str | None = None) -> tuple[bool, dict]:
    """Learn `name`'s states from its own recording and store the model (replacing one of that name).
    `states`: the state names, lowest level first ("OFF,IDLE,ON"), or None to find and name them by level."""
    model.check_name(name)
    state_names = model.parse_state_names(states)
    _check_body(body, content_type)
    learnt = model.learn(name, recording.parse(body, min_rows=model.MIN_ROWS), state_names)
    with db.transaction() as conn:
        created, updated_at = store.save(conn, learnt)
    return created, _model_json(learnt, updated_at)


def models() -> list[dict]:
    return [_model_json(m, updated) for m, updated in store.load_all()]


def _chosen(names: str | None) -> list[model.ApplianceModel]:
    stored = [m for m, _ in store.load_all()]
    if not names:
        return stored
    by_name = {m.name.lower(): m for m in stored}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n.lower() not in by_name]
    if unknown:
        raise UnknownAppliance(f"no model named {unknown[0]!r}; trained: {', '.join(m.name for m in stored) or 'none'}",
                               field="models")
    return list({by_name[n.lower()].name: by_name[n.lower()] for n in wanted}.values())


@dataclass(frozen=True)
class Labelled:
    csv: str
    decoded: decode.Decoded
    models: list[model.ApplianceModel]


def label(body: str, content_type: str | None = "text/csv", names: str | None = None) -> Labelled:
    """Each row of a mains recording labelled with every appliance's state (all stored models, or `names`)."""
    _check_body(body, content_type)
    mains = recording.parse(body)
    chosen = _chosen(names)
    decoded = decode.decode(chosen, mains)
    return Labelled(recording.labelled_csv(mains, [m.name for m in chosen], decoded.states(chosen)), decoded,
                    chosen)
