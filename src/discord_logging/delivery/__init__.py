"""Stage 2, delivery: the worker thread ("discord-logging") and its one asyncio event loop.

The handler hands snapshots over to the :mod:`~.worker`; storms become incidents
(:mod:`~.aggregation`); the :mod:`~.notifier` runs one :mod:`~.lane` per webhook, which
renders, packs, asks the shared limits for a slot, sends, and decides what each answer means:
delivered, retried with :mod:`~.backoff`, stopped by the :mod:`~.circuit` breaker, or kept as a
dead letter and later taken back by :mod:`~.redelivery`. :mod:`~.blocking` is the synchronous
face (``SyncNotifier``, ``send()``); :mod:`~.replay` redelivers stored letters on request.
"""
