"""Webhooks: the durable outbox (outbox.py) and the three body formats (formats.py)."""

from .outbox import Delivery, WebhookOutbox

__all__ = ["Delivery", "WebhookOutbox"]
