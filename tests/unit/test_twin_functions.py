"""The twin's in-process Lambda service: one function's invocations run together in its environment;
different functions take turns, and none waits forever behind another."""

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


def test_invocations_of_one_function_run_together_in_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a function whose handler only returns once two invocations are inside it at the same time
    monkeypatch.setenv("TWIN_TEST_SHARED", "process")
    both_inside = threading.Barrier(2, timeout=WAIT_S)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        both_inside.wait()  # raises BrokenBarrierError if the invocations were serialized
        return {"seen": os.environ["TWIN_TEST_SHARED"], "n": event["n"]}

    functions = Functions({"retrieval": {"TWIN_TEST_SHARED": "retrieval"}}, handlers={"retrieval": handler})
    # When it is invoked twice at once
    threads = [run_in_thread(partial(functions.invoke, "retrieval", {"n": n})) for n in range(2)]
    for thread, _ in threads:
        thread.join(WAIT_S)
    # Then both ran concurrently, each in the function's environment, and the process's is back
    assert sorted(results[0]["n"] for _, results in threads) == [0, 1]
    assert all(results[0]["seen"] == "retrieval" for _, results in threads)
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


def test_a_waiting_function_goes_before_newcomers_of_the_running_one() -> None:
    # Given `a` running and `b` waiting for its turn
    functions = Functions({"a": {}, "b": {}})
    functions._running_key, functions._running = "a", 1
    functions._waiting["b"] = 1
    # Then a newcomer of `a` may not join the running turn, and `b` waits until `a` is done
    assert functions._may_run("a") is False
    assert functions._may_run("b") is False
    # When nobody else waits, Then a newcomer of the running function joins it
    functions._waiting["b"] = 0
    assert functions._may_run("a") is True
    # And when nothing runs, anyone may start
    functions._running_key, functions._running = None, 0
    assert functions._may_run("b") is True


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


def test_each_concurrent_invocation_has_a_container_of_its_own(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a handler module that keeps the current request on itself, as Powertools' resolver does, and
    # returns only once two invocations are inside it at the same time
    (tmp_path / "twin_stateful_handler.py").write_text(
        "current = None\n"
        "def handler(event, context):\n"
        "    global current\n"
        "    current = event['n']\n"
        "    event['both_inside'].wait()\n"
        "    return {'n': current}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    functions = Functions({"stateful": {}}, modules={"stateful": "twin_stateful_handler"})
    for round_ in range(2):
        # When it is invoked twice at once (twice over)
        numbers, both_inside = (2 * round_, 2 * round_ + 1), threading.Barrier(2, timeout=WAIT_S)
        threads = [
            run_in_thread(partial(functions.invoke, "stateful", {"n": n, "both_inside": both_inside}))
            for n in numbers
        ]
        for thread, _ in threads:
            thread.join(WAIT_S)
        # Then neither saw the other's request: each ran in a container (a module) of its own
        assert sorted(results[0]["n"] for _, results in threads) == list(numbers)
    # And the second pair ran in the first pair's warm containers
    assert functions.containers("stateful") == 2
