"""Current recordings as CSV: one row a second, `Timestamp`, `Maximum current` (mA), `Effective current` (mA).

Pure: text in, a Recording (or an InvalidRecording naming the row and column) out. Rows are numbered as a
spreadsheet shows them: the header is row 1, the first reading row 2.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import InvalidRecording

TIMESTAMP, PEAK, RMS = "Timestamp", "Maximum current", "Effective current"
COLUMNS = (TIMESTAMP, PEAK, RMS)
#: The decoder's cost grows with rows x state combinations; a day of 1 s rows plus margin.
MAX_ROWS = 100_000


@dataclass(frozen=True)
class Recording:
    timestamps: list[str]  # as written, so the labelled output repeats them exactly
    seconds: list[float]  # Unix time
    peak: list[float]  # mA
    rms: list[float]  # mA
    peak_text: list[str]
    rms_text: list[str]

    def __len__(self) -> int:
        return len(self.seconds)


def _seconds(text: str, row: int) -> float:
    try:
        value = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRecording(f"{text!r} is neither Unix seconds nor an ISO 8601 time", row, TIMESTAMP) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    if not math.isfinite(value):
        raise InvalidRecording(f"{text!r} is not a time", row, TIMESTAMP)
    return value


def _milliamps(text: str, row: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidRecording(f"{text!r} is not a number (mA)", row, column) from None
    if not math.isfinite(value) or value < 0:
        raise InvalidRecording(f"{text!r} is not a current: a finite number of mA, 0 or more", row, column)
    return value


def parse(text: str, min_rows: int = 1, max_rows: int = MAX_ROWS) -> Recording:
    """The recording in `text`; columns are found by name (case and surrounding spaces ignored, others kept
    out), timestamps must increase strictly."""
    if text.startswith("\ufeff"):
        text = text[1:]  # a spreadsheet's UTF-8 byte order mark
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidRecording("the recording is empty: expected a header row "
                               f"{','.join(COLUMNS)}", 1) from None
    except csv.Error as error:
        raise InvalidRecording(f"not CSV: {error}", 1) from None
    names = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [column for column in COLUMNS if column.lower() not in names]
    if missing:
        raise InvalidRecording(f"missing column(s) {', '.join(repr(m) for m in missing)}; the header is "
                               f"{','.join(header)!r}", 1, missing[0])
    at = [names[column.lower()] for column in COLUMNS]
    width = max(at) + 1
    timestamps, seconds, peak, rms, peak_text, rms_text = [], [], [], [], [], []
    row = 1
    try:
        for row, cells in enumerate(reader, start=2):
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # blank line
            if len(cells) < width:
                lacking = next(column for column, i in zip(COLUMNS, at) if i >= len(cells))
                raise InvalidRecording(f"the row has {len(cells)} cell(s), no {lacking!r}", row, lacking)
            if len(seconds) == max_rows:
                raise InvalidRecording(f"more than {max_rows} rows: split the recording", row)
            stamp, high, mean = (cells[i].strip() for i in at)
            when = _seconds(stamp, row)
            if seconds and when <= seconds[-1]:
                kind = "repeats" if when == seconds[-1] else "is earlier than"
                raise InvalidRecording(f"timestamp {stamp!r} {kind} the previous row's: rows must be in time order, "
                                       "one per instant", row, TIMESTAMP)
            peak.append(_milliamps(high, row, PEAK))
            rms.append(_milliamps(mean, row, RMS))
            timestamps.append(stamp)
            seconds.append(when)
            peak_text.append(high)
            rms_text.append(mean)
    except csv.Error as error:  # raised while reading the row after `row`
        raise InvalidRecording(f"not CSV: {error}", row + 1) from None
    if len(seconds) < min_rows:
        raise InvalidRecording(f"{len(seconds)} reading row(s): at least {min_rows} are needed", row)
    return Recording(timestamps, seconds, peak, rms, peak_text, rms_text)


def _cell(text: str) -> str:
    # A text cell a spreadsheet would run as a formula (model names are checked, but the header repeats them).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def labelled_csv(recording: Recording, names: list[str], states: list[list[str]]) -> str:
    """The recording with one `<name> state` column per appliance; `states[a][t]` is appliance a's state at row t."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", PEAK, RMS, *(_cell(f"{name} state") for name in names)])
    writer.writerows(zip(recording.timestamps, recording.peak_text, recording.rms_text, *states))
    return out.getvalue()
