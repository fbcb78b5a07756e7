"""What one POST /events may carry: the server enforces these (wattprint.ingest) and the sensor-side client
(wattprint.client) batches to them, so both read them here. No imports: the client runs where no driver is."""

# 1000 events of the real sensors' size are ~457 KB: this leaves twice that, and base64 (4/3) of it stays well
# inside Lambda's 6 MB request limit.
MAX_BODY_BYTES = 1024 * 1024
MAX_EVENTS = 1000
