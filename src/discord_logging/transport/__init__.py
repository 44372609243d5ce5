"""Stage 5, transport: HTTP to Discord and what its answers mean.

Runs on the worker's event loop. ``webhook_url`` parses and redacts webhook URLs, ``client``
owns the one ``httpx.AsyncClient``, ``headers`` reads rate-limit headers and 429 bodies,
``outcome`` classifies every answer into the lane's next move, ``channels`` maps a webhook to
the channel whose limits it shares, ``answer_body`` reads an answer's body with a cap.
"""
