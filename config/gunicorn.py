"""gunicorn's settings for the web process (`gunicorn -c config/gunicorn.py config.wsgi:application`: the Procfile,
bin/serve and the Dockerfile all start it so). Each value can be changed by an environment variable; the defaults
suit one small machine.

gthread workers: the admin's pages are short database reads and "Push to Zoho now" waits on Zoho for a few hundred
milliseconds, so a few threads per process keep a slow Zoho call from holding up other people's pages.

Slow clients: serve it behind a buffering proxy (deploy/nginx/default.conf.template; compose.yaml's proxy), which
hands gunicorn only whole requests. What gunicorn alone bounds, and what it cannot:
- bounded: a new connection that sends nothing for 5 s (gunicorn's own figure, not a setting) is parked without a
  thread, an idle kept-alive one is closed after `keepalive`; the request line and headers are capped in size
  (limit_request_* below); at most `worker_connections` (1000) connections per worker.
- not bounded: a client that has begun its headers or body and sends the rest slowly holds a thread until it
  finishes or goes away, however long that takes. gthread's `timeout` is the worker's heartbeat, kept by its main
  loop, so it never fires for that thread. More threads only raise the number of slow clients it takes (and each
  thread keeps a database connection of its own): workers x threads of them (16 by default on 2 CPUs) and
  /health/ stops answering (bench/slow_clients.py).
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# WEB_CONCURRENCY is the name Heroku-style platforms set; default: 2 per CPU, at most 4.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(4, 2 * multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A request may wait on Zoho (client read timeout 30 s): allow it, then recycle the worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# gunicorn's defaults, stated: a longer request line, more header fields or a longer field is refused (400).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# Recycle workers now and then so a slow leak cannot grow without end (jittered so they do not all restart at once).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
# Logs to the process's output, where the Procfile runner, Docker or systemd collect them.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# No gunicornc control socket ($HOME/.gunicorn/gunicorn.ctl by default): several servers on one host would fight
# over one path, and nothing here uses it.
control_socket_disable = True
# Behind a proxy on another host, trust its X-Forwarded-* headers only from FORWARDED_ALLOW_IPS (gunicorn's own
# variable; default 127.0.0.1).
