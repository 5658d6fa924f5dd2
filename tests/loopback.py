"""A small HTTP server on 127.0.0.1 for tests that download things; nothing touches the network.

Usage::

    from loopback import LoopbackServer, send_truncated

    with LoopbackServer({'/data.bin': b'payload'}) as server:
        server.routes['/short.bin'] = send_truncated(b'half', length=8)
        download(server.url('/data.bin'), ...)
        assert server.hits['/data.bin'] == 1
        assert server.requests[0].path == '/data.bin'

``routes`` maps a request path to either the bytes to serve (200 with a correct
Content-Length) or a route: a function called with the
:class:`http.server.BaseHTTPRequestHandler` that writes the whole response. The helpers
below make the common routes. A path without a route gets a 404. Every GET is counted in
``hits`` (a :class:`collections.Counter` keyed by path), routed or not, and listed in
``requests`` (path and headers, in arrival order).

Tests import it as ``from loopback import ...``: ``tests/`` has no ``__init__.py``, so
pytest puts that folder on ``sys.path``.
"""
import collections
import http.server
import re
import threading
import time

__all__ = ['LoopbackServer', 'Request', 'send_body', 'send_truncated', 'send_status',
           'send_slowly', 'send_ranges', 'fail_first']

Request = collections.namedtuple('Request', 'path headers')


def send_body(body):
    """Route: 200 with the whole ``body`` and a correct Content-Length."""
    def route(handler):
        handler.send_response(200)
        handler.send_header('Content-Length', str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
    return route


def send_truncated(body, length):
    """Route: 200 announcing ``length`` bytes, send only ``body``, then close the connection.

    ``length`` must be larger than ``len(body)``, so the client sees an interrupted download.
    """
    if length <= len(body):
        raise ValueError('length {} must exceed the {} bytes sent'.format(length, len(body)))

    def route(handler):
        handler.send_response(200)
        handler.send_header('Content-Length', str(length))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        handler.close_connection = True
    return route


def send_status(code):
    """Route: the HTTP error status ``code`` (e.g. 404, 500)."""
    def route(handler):
        handler.send_error(code)
    return route


def send_slowly(body, pieces=10, delay=0.08):
    """Route: 200 with ``body`` sent in ``pieces`` parts, pausing ``delay`` seconds after each."""
    def route(handler):
        handler.send_response(200)
        handler.send_header('Content-Length', str(len(body)))
        handler.end_headers()
        step = max(1, -(-len(body) // pieces))
        for start in range(0, len(body), step):
            handler.wfile.write(body[start:start + step])
            handler.wfile.flush()
            time.sleep(delay)
    return route


def send_ranges(body, drop_after=None, honour_range=True, etag=None):
    """Route: serve ``body``, answering ``Range: bytes=N-`` with 206 and the bytes from N on.

    With ``drop_after``, the first response is cut after that many bytes of its body (its
    Content-Length announces them all) and the connection closed; later ones are whole. With
    ``honour_range=False`` the Range header is ignored and every answer is the whole ``body``.
    ``etag`` is sent as the ETag header.
    """
    dropped = threading.Event()

    def route(handler):
        match = re.fullmatch(r'bytes=(\d+)-', handler.headers.get('Range') or '')
        start = int(match.group(1)) if match and honour_range else 0
        if start:
            handler.send_response(206)
            handler.send_header('Content-Range',
                                'bytes {}-{}/{}'.format(start, len(body) - 1, len(body)))
        else:
            handler.send_response(200)
        if etag:
            handler.send_header('ETag', etag)
        handler.send_header('Content-Length', str(len(body) - start))
        handler.end_headers()
        if drop_after is not None and not dropped.is_set():
            dropped.set()
            handler.wfile.write(body[start:start + drop_after])
            handler.wfile.flush()
            handler.close_connection = True
            return
        handler.wfile.write(body[start:])
        handler.wfile.flush()
    return route


def fail_first(count, route, code=503):
    """Route: answer the first ``count`` requests with the error ``code``, then as ``route``.

    ``route`` is the bytes to serve or another route.
    """
    if isinstance(route, (bytes, bytearray, memoryview)):
        route = send_body(bytes(route))
    left = [count]
    lock = threading.Lock()

    def wrapped(handler):
        with lock:
            fail = left[0] > 0
            left[0] -= fail
        if fail:
            handler.send_error(code)
        else:
            route(handler)
    return wrapped


class _Handler(http.server.BaseHTTPRequestHandler):
    """Count the request, then answer it with the route of its path (404 without one)."""

    def do_GET(self):  # noqa: N802 (http.server naming)
        loopback = self.server.loopback
        with loopback._lock:
            loopback.hits[self.path] += 1
            loopback.requests.append(Request(self.path, dict(self.headers)))
            route = loopback.routes.get(self.path)
        if route is None:
            self.send_error(404, 'Not Found')
        elif isinstance(route, (bytes, bytearray, memoryview)):
            send_body(bytes(route))(self)
        else:
            route(self)

    def log_message(self, *args):
        pass  # keep the test output clean


class LoopbackServer:
    """An HTTP server on 127.0.0.1 (a free port) answering from ``routes`` in a thread.

    Use it as a context manager (``with LoopbackServer(routes) as server:``), or call
    :meth:`start` and :meth:`stop`. ``routes`` may be changed while it runs.
    """

    def __init__(self, routes=None):
        self.routes = dict(routes or {})
        self.hits = collections.Counter()
        self.requests = []
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None

    def start(self):
        """Bind a free port on 127.0.0.1 and serve in a daemon thread; return ``self``."""
        if self._httpd is not None:
            raise RuntimeError('the server is already running')
        httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        httpd.daemon_threads = True  # a stuck client never blocks the test run
        httpd.loopback = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever,
                                        kwargs={'poll_interval': 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving and free the port; safe to call twice."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
        self._httpd = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def port(self):
        if self._httpd is None:
            raise RuntimeError('the server is not running')
        return self._httpd.server_address[1]

    def url(self, path):
        """The full URL of ``path`` (which starts with '/') on this server."""
        return 'http://127.0.0.1:{}{}'.format(self.port, path)
