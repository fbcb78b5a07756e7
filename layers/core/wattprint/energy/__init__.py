"""Energy accounting: power and energy readings in, kWh per 15-minute bucket per device out (issue 14).

Pure modules: `times` (instants and buckets), `integrate` (readings → buckets), `readings` (POST /energy's
body), `params` (query strings), `forecast` (seasonal baseline and its backtest). I/O: `store` (SQL), and
`service`, whose functions the handlers and the ingest path call.
"""
