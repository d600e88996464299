"""The gunicorn settings ``fhirsvc serve`` (and ``make run``) serves with.

A gunicorn configuration file: every name below is a gunicorn setting (https://docs.gunicorn.org/en/stable/
settings.html). ``fhirsvc serve --config FILE`` or ``FHIRSVC_GUNICORN_CONFIG=FILE`` reads another file after
this one: each setting it names replaces the one here, the rest stay. ``--host``, ``--port``, ``--workers`` and
``--threads`` on the command line win over both files.

Why threaded workers: a sync worker serves one connection from its first byte to its last, so two idle
keep-alive connections (a browser showing a monograph page) or two clients sending a header line a second held
both sync workers until their 30 s timeout, and /healthz and order-sign waited. A ``gthread`` worker waits for
a connection's first bytes, and for the next request on a kept-alive connection, in one selector, without a
thread, and closes an idle kept-alive connection after ``keepalive`` seconds; only a request being read or
served takes one of its ``threads``.

The worker is gunicorn's gthread worker whose threads wait at most 10 s for a client's next bytes
(``fhirsvc/gunicorn_worker.py``): a client that goes silent in the middle of a request no longer holds a thread
for good.

What it does not bound: a thread reads a request's headers and body with no deadline for the whole, so a client
that sends them a byte every few seconds (slowloris) holds that thread for as long as it keeps sending;
``threads`` such clients on one worker hold that worker, ``workers * threads`` the whole service. A connection
that is opened and never sends a byte takes no thread but is never closed either (``worker_connections`` of
them fill a worker). ``timeout`` does not help: the worker's main loop, not the thread, tells the master it is
alive. In production a buffering reverse proxy in front (nginx: it reads each request whole, within its own
``client_header_timeout``/``client_body_timeout``, before passing it on over a fast local connection) is what
bounds slow and idle clients; see docs/deployment.md, "Serving".
"""

import os

# Where to listen: HOST and PORT of the environment (``make run`` passes its own), else 127.0.0.1:8080.
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"

# Worker processes (FHIRSVC_WORKERS): each loads the knowledge (about 64 MB each for the shipped knowledge) and
# runs Python on one CPU at a time; one per CPU is the usual choice.
workers = int(os.environ.get("FHIRSVC_WORKERS", "2"))

# Threads per worker (FHIRSVC_THREADS): the requests a worker reads or serves at once. A CDS call is a few
# milliseconds of Python (the threads of a worker take turns on one CPU), or waits on the EHR's FHIR server (up to
# FHIRSVC_FETCH_DEADLINE) or the database, when the other threads run. 8 lets a short call pass a long one (a
# large $check-orders) and lets a few slow senders be read without holding up the rest, while bounding what one
# worker holds in memory at once: at most 8 request bodies of FHIRSVC_MAX_CONTENT_LENGTH.
worker_class = "fhirsvc.gunicorn_worker.ThreadWorker"
threads = int(os.environ.get("FHIRSVC_THREADS", "8"))

# Connections (idle, kept alive or busy) a worker keeps open at most; when it has this many, it accepts no more
# until one closes. Below the usual limit of 1024 open files per process.
worker_connections = 500

# Seconds an idle kept-alive connection is kept (it takes no thread meanwhile). Long enough for an EHR's or a
# proxy's next call on the same connection; a proxy's own idle timeout towards the service should be shorter
# (nginx ``keepalive_timeout`` in the ``upstream`` block), so that it never sends on a connection being closed.
keepalive = 5

# Seconds a worker may fail to tell the master it is alive before it is killed and replaced. With gthread the
# worker's main loop tells it, so this catches a stuck worker (its main loop not running), not a slow request.
timeout = 30

# Seconds a worker has to finish the requests it is serving when it is told to stop (SIGTERM, a restart): more
# than a CDS call's fetch deadline (FHIRSVC_FETCH_DEADLINE, 4 s) and a large $check-orders.
graceful_timeout = 15

# Limits on the request line and headers (413/400 from gunicorn, before the app). gunicorn's defaults except the
# request line, raised to gunicorn's maximum for long GET searches (longer ones: POST [type]/_search). The body
# is bounded by the app (FHIRSVC_MAX_CONTENT_LENGTH, chunked or not).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# One access log line per request on stdout (the service's own log lines go to stderr).
accesslog = "-"
