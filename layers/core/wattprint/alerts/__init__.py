"""Alerts: each device's completed hours scored against its own history, and alerts with a lifecycle told once."""
