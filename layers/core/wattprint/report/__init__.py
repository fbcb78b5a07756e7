"""Report: the read API (params, cursors, csv, queries) and its OpenAPI document. Entry: service.py. Imports
nothing."""
