"""The twin's in-process Lambda service: one invocation at a time, as in a Lambda container, each in its
function's environment, first come first served, so none waits forever behind others."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from local_twin.functions import Functions

WAIT_S = 10.0  # bounds every wait in these tests; a correct run never reaches it
OVERLAP_PROBE_S = 0.5  # how long a handler watches for the other function to start (it must not)


def run_in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(call()), daemon=True)
    thread.start()
    return thread, results


def test_invocations_of_one_function_take_turns_in_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a function whose first invocation watches for a second one to start (it must not), as two
    # requests at once would share the handler module's state (Powertools' resolver keeps the event on itself)
    monkeypatch.setenv("TWIN_TEST_SHARED", "process")
    first_inside, second_started = threading.Event(), threading.Event()
    seen: dict[int, Any] = {}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["n"] == 0:
            first_inside.set()
            seen["second_started_during_first"] = second_started.wait(OVERLAP_PROBE_S)
        else:
            second_started.set()
        seen[event["n"]] = os.environ["TWIN_TEST_SHARED"]
        return {"n": event["n"]}

    functions = Functions({"retrieval": {"TWIN_TEST_SHARED": "retrieval"}}, handlers={"retrieval": handler})
    # When it is invoked a second time while the first invocation runs
    first, first_result = run_in_thread(partial(functions.invoke, "retrieval", {"n": 0}))
    assert first_inside.wait(WAIT_S)
    second, second_result = run_in_thread(partial(functions.invoke, "retrieval", {"n": 1}))
    first.join(WAIT_S)
    second.join(WAIT_S)
    # Then the second started only after the first finished, each in the function's environment, and the
    # process's environment is back
    assert seen == {"second_started_during_first": False, 0: "retrieval", 1: "retrieval"}
    assert (first_result, second_result) == ([{"n": 0}], [{"n": 1}])
    assert os.environ["TWIN_TEST_SHARED"] == "process"


def test_different_functions_never_overlap_and_each_sees_only_its_own_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given two functions with different environments; the first watches for the second to start
    monkeypatch.delenv("TWIN_TEST_ONLY_A", raising=False)
    a_inside, b_started = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def handler_a(event: dict[str, Any], context: Any) -> dict[str, Any]:
        a_inside.set()
        seen["b_started_during_a"] = b_started.wait(OVERLAP_PROBE_S)
        seen["a"] = os.environ["FUNCTION"]
        return {}

    def handler_b(event: dict[str, Any], context: Any) -> dict[str, Any]:
        b_started.set()
        seen["b"] = os.environ["FUNCTION"]
        seen["b_sees_a_only"] = os.environ.get("TWIN_TEST_ONLY_A")
        return {}

    functions = Functions(
        {"a": {"FUNCTION": "a", "TWIN_TEST_ONLY_A": "1"}, "b": {"FUNCTION": "b"}},
        handlers={"a": handler_a, "b": handler_b},
    )
    # When b is invoked while a runs
    first, _ = run_in_thread(lambda: functions.invoke("a", {}))
    assert a_inside.wait(WAIT_S)
    second, _ = run_in_thread(lambda: functions.invoke("b", {}))
    first.join(WAIT_S)
    second.join(WAIT_S)
    # Then b started only after a finished, and neither saw the other's variables
    assert seen == {"b_started_during_a": False, "a": "a", "b": "b", "b_sees_a_only": None}
    assert "TWIN_TEST_ONLY_A" not in os.environ and "FUNCTION" not in os.environ


def test_invocations_run_in_the_order_they_came() -> None:
    # Given one invocation running, then `b` and `a` waiting, in that order
    functions = Functions({"a": {}, "b": {}})
    b_ticket, a_ticket = object(), object()
    functions._running = True
    functions._queue.extend([b_ticket, a_ticket])
    # Then neither may start while the first runs
    assert not functions._may_run(b_ticket) and not functions._may_run(a_ticket)
    # When it is done, Then `b` goes first, and `a` once `b` has left the queue
    functions._running = False
    assert functions._may_run(b_ticket) and not functions._may_run(a_ticket)
    functions._queue.popleft()
    assert functions._may_run(a_ticket)


def test_a_handler_that_raises_gives_back_its_turn_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a function whose handler raises
    monkeypatch.setenv("FUNCTION", "process")

    def failing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    functions = Functions(
        {"a": {"FUNCTION": "a"}, "b": {"FUNCTION": "b"}},
        handlers={"a": failing, "b": lambda event, context: {"seen": os.environ["FUNCTION"]}},
    )
    # When it is invoked, Then the error reaches the caller, the environment is restored, and the next
    # function runs at once
    with pytest.raises(RuntimeError, match="boom"):
        functions.invoke("a", {})
    assert os.environ["FUNCTION"] == "process"
    assert functions.invoke("b", {}) == {"seen": "b"}


def test_a_serving_function_with_a_model_load_delay_waits_before_each_model_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given serving's model loader, and a function whose environment asks for a 2.5 s delay
    from local_twin import functions as module
    from merchandiser.serving import runtime

    loads: list[str] = []
    waits: list[float] = []
    monkeypatch.setattr(runtime, "load_model", lambda model_dir: loads.append(str(model_dir)) or "model")
    monkeypatch.setattr(module.time, "sleep", waits.append)  # the delay is recorded, never slept
    handlers = {
        key: (lambda event, context: {"model": runtime.load_model(event["dir"])})
        for key in ("retrieval", "ranking")
    }
    functions = Functions({"retrieval": {module.MODEL_LOAD_DELAY: "2.5"}, "ranking": {}}, handlers=handlers)
    # When it loads a model, and another function without the delay loads one too
    slow = functions.invoke("retrieval", {"dir": "m1"})
    plain = functions.invoke("ranking", {"dir": "m2"})
    # Then only the first waited, 2.5 s, before the real loader ran; both got the model
    assert (slow, plain) == ({"model": "model"}, {"model": "model"})
    assert loads == ["m1", "m2"] and waits == [2.5]
