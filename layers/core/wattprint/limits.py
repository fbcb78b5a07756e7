"""What one POST /events may carry: the server enforces these (wattprint.ingest) and the sensor-side client
(wattprint.client) batches to them, so both read them here. No imports: the client runs where no driver is."""

MAX_BODY_BYTES = 256 * 1024
MAX_EVENTS = 1000
