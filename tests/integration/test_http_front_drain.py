"""A draining front (a front worker being replaced): no new connection, kept-alive clients told to
close, and every answer begun written before the server lets its process go."""

from __future__ import annotations

import http.client
import threading
from typing import Any

from local_twin.http_front import HttpFront, Route

WAIT_S = 10.0  # bounds every wait; a correct run never reaches it


def test_a_draining_front_finishes_the_answer_in_progress_and_closes_kept_alive_connections() -> None:
    # Given a front whose handler holds its answer until released, and a kept-alive client
    entered, release = threading.Event(), threading.Event()

    def invoke(key: str, event: dict[str, Any]) -> dict[str, Any]:
        if event["path"] == "/slow":
            entered.set()
            release.wait(WAIT_S)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok": true}'}

    front = HttpFront([Route("GET", "/slow", "retrieval"), Route("GET", "/fast", "retrieval")], invoke)
    front.start()
    port = front.server.server_address[1]
    kept_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    kept_alive.request("GET", "/v1/fast")
    first = kept_alive.getresponse()
    first.read()
    slow = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    slow_answer: list[http.client.HTTPResponse] = []
    caller = threading.Thread(
        target=lambda: (slow.request("GET", "/v1/slow"), slow_answer.append(slow.getresponse()))
    )
    caller.start()
    assert entered.wait(WAIT_S)
    # When the front drains while that answer is held
    drained: list[bool] = []
    drainer = threading.Thread(target=lambda: drained.append(front.drain(grace_s=0.0, timeout_s=WAIT_S)))
    drainer.start()
    ticks = threading.Event()
    for _ in range(10_000):  # drain() says it is draining before anything else: wait for that, bounded
        if front.draining:
            break
        ticks.wait(0.001)
    kept_alive.request("GET", "/v1/fast")  # the kept-alive client's next request, during the drain
    last = kept_alive.getresponse()
    last.read()
    # Then the drain waits for the held answer, which arrives whole
    assert drainer.is_alive()
    release.set()
    drainer.join(WAIT_S)
    caller.join(WAIT_S)
    assert drained == [True]
    assert slow_answer[0].status == 200 and slow_answer[0].read() == b'{"ok": true}'
    # and the kept-alive client was answered, and told to close its connection
    assert first.getheader("Connection") is None
    assert last.status == 200 and last.getheader("Connection") == "close"
    front.server.server_close()
