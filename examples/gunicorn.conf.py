"""gunicorn settings for flask_app.py: ``gunicorn -c examples/gunicorn.conf.py ...``.

What happens with DiscordHandler, from start to shutdown:

* preload_app = True: the app module (and so the handler, its settings and templates) is
  loaded once in the master; a bad DISCORD_* setting stops gunicorn at start, not per worker.
  The master's handler starts its worker thread at once (it redelivers letters an earlier
  run kept); each fork parks that thread's loop outside any store call for the moment of the
  fork, so the workers inherit no half-done I/O.
* In each forked worker the handler sees the new pid and gets a fresh worker thread, queue,
  HTTP client and store connection; nothing is shared with the master or other workers.
* Shutdown (SIGTERM or Ctrl+C, also a worker recycled by max_requests): each worker finishes
  its request and exits normally, and ``logging.shutdown()`` (run at exit by the logging
  module) closes the handler: it delivers what is queued within DISCORD_CLOSE_TIMEOUT (5 s,
  keep it below graceful_timeout) and keeps the rest as dead letters in DISCORD_STORE_PATH,
  which all workers share (``discord-logging flush`` redelivers them). So no worker_exit or
  on_exit hook is needed. A worker killed with SIGKILL (e.g. after ``timeout``) loses what
  it had not yet sent.
"""

bind = "127.0.0.1:8000"
workers = 2
preload_app = True
graceful_timeout = 30  # more than DISCORD_CLOSE_TIMEOUT, so workers can deliver at exit
