"""A real uvicorn server of ``dreamreel serve`` on 127.0.0.1 (a free port) in a thread, stopped at the
end, for the tests that need a real client (webuiapi, the browser)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def running_server(settings: Any) -> Iterator[tuple[str, Any]]:
    """(base URL, app) of a server running ``settings`` until the block ends."""
    import uvicorn

    from dreamreel.serve.app import create_app

    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        app.state.queue.closing = True  # as the CLI's server does on Ctrl-C: event streams end
        server.should_exit = True
        thread.join(15)
        sock.close()


def wait_for_model(app: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while app.state.queue.model is None:
        assert not app.state.queue.model_error, app.state.queue.model_error
        assert time.monotonic() < deadline, "the model did not load"
        time.sleep(0.05)
