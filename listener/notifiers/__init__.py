"""Notifiers: deliver one alert event to one receiver (webhook, Slack, PagerDuty, e-mail).

A notifier is small and stateless about retries: :meth:`Notifier.send` either
delivers the event or raises :class:`NotifierError` saying whether trying again
later can help.  Durability, retries with backoff, idempotency and rate limits
belong to the outbox and its dispatcher (``listener/outbox.py``), not here.
"""
