"""Live updates: announcements (announce), messages and connections (live), posting to dashboards (push).
Entry: service.py. Imports nothing: the push function runs outside the VPC with no database driver."""
