"""``merchandiser retrain``: the command and the running twin's control endpoint, with a stand-in retrain."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_twin import cli
from local_twin.control import ControlServer


@pytest.fixture
def control() -> Iterator[tuple[ControlServer, list[dict[str, str]]]]:
    calls: list[dict[str, str]] = []

    def retrain(hyperparameters: dict[str, str]) -> dict[str, Any]:
        calls.append(hyperparameters)
        if hyperparameters.get("fail"):
            raise RuntimeError("the training job exited with 2")
        return {"model_version": "m2", "promote": True, "reasons": ["same window"], "erasure": {},
                "evaluation": {"models": {"pipeline": {"ndcg@10": 0.25}}}}  # fmt: skip

    server = ControlServer(retrain)
    server.start()
    yield server, calls
    server.stop()


def state_file(tmp_path: Path, control_url: str | None) -> Path:
    path = tmp_path / "twin.json"
    path.write_text(json.dumps({"api_url": "http://127.0.0.1:1", "control_url": control_url}))
    return path


def test_retrain_passes_hyperparameters_and_writes_the_evaluation(
    control: tuple[ControlServer, list[dict[str, str]]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, calls = control
    state = state_file(tmp_path, server.url)
    # When the command is run with an output dir and two hyperparameters
    out = str(tmp_path / "out")
    code = cli.main(
        ["retrain", "--state", str(state), "--output-dir", out, "--factors", "32", "--test-fraction", "0.2"]
    )
    # Then the twin got them, and evaluation.json is where it was asked
    assert code == 0 and calls == [{"factors": "32", "test-fraction": "0.2"}]
    evaluation = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert evaluation["models"]["pipeline"]["ndcg@10"] == 0.25
    assert "model m2: pipeline ndcg@10 0.25; promote=True" in capsys.readouterr().out


def test_a_failed_retrain_is_an_error_with_the_twins_message(
    control: tuple[ControlServer, list[dict[str, str]]], tmp_path: Path
) -> None:
    server, _ = control
    with pytest.raises(SystemExit, match=r"RETRAIN_FAILED.*exited with 2"):
        cli.main(["retrain", "--state", str(state_file(tmp_path, server.url)), "--fail", "yes"])


def test_a_state_without_a_running_twin_or_odd_hyperparameters_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no control_url"):
        cli.main(["retrain", "--state", str(state_file(tmp_path, None))])
    with pytest.raises(SystemExit, match="does not answer"):
        cli.main(["retrain", "--state", str(state_file(tmp_path, "http://127.0.0.1:9"))])
    with pytest.raises(SystemExit, match="--name value pairs"):  # a name without its value
        cli.main(["retrain", "--state", str(state_file(tmp_path, "http://127.0.0.1:9")), "--factors"])


def test_other_commands_take_no_hyperparameters() -> None:
    with pytest.raises(SystemExit):
        cli.main(["up", "--factors", "32"])


def test_the_control_endpoint_answers_json_errors(
    control: tuple[ControlServer, list[dict[str, str]]],
) -> None:
    server, calls = control
    for path, body, status in (("/nope", b"{}", 404), ("/retrain", b"{not json", 400)):
        request = urllib.request.Request(f"{server.url}{path}", data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=5)
        assert error.value.code == status and "error" in json.loads(error.value.read())
    assert calls == []
