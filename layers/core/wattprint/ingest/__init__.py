"""Ingest: raw event lines or JSON records in (parser, record), stored in commit order with the clustering runs
they open (store), runs sent after commit (outbox). Entry: service.py. Imports nothing, so a handler loads only
the modules it uses."""
