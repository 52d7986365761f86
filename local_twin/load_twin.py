"""The twin of a load test, in a process of its own: ``python -m local_twin.load_twin --data DIR --work W``.

``local_twin.load`` runs locust, which patches the whole interpreter for gevent at import; the twin
(threads: the Kinesis poller, the archive, moto's client pools) runs here instead, unpatched. It starts
the twin on the shop in ``--data`` (deploy, train, publish, serve), then answers one JSON command per
line on stdin with one JSON line on its stdout (the handlers' logs go to stderr):

- ``{"do": "faults", "settings": {...}}``: ``moto_faults`` settings at moto's process;
- ``{"do": "reload"}``: serving loads its model again (``Twin.reload_serving``, slow when the serving
  functions' ``TWIN_MODEL_LOAD_DELAY_SECONDS`` is set);
- ``{"do": "settle"}``: impressions flushed, the stream drained by the event processor;
- ``{"do": "counts"}``: what the event processor did with the stream's records (``EventTotals``) and
  what the dead-letter queue holds;
- ``{"do": "stop"}``: the twin stops and the process ends (also when stdin closes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from local_twin.twin import Twin
from merchandiser.stream import BatchOutcome, EventProcessor, Parsed


@dataclass
class EventTotals:
    """The event processor's outcomes over the stream's distinct records.

    The event source mapping delivers a record again when a batch is retried from its lowest failed
    record, so a record already settled (processed, a duplicate or dead-lettered) may come back: the
    processor then counts an event as a duplicate and a bad record as dead-lettered a second time.
    Those redeliveries are counted apart, so that ``processed + duplicates + dead_lettered`` is the
    number of distinct event records the stream held (impressions are counted apart too)."""

    processed: int = 0
    duplicates: int = 0  # events whose event_id was already applied: sent again by a client
    dead_lettered: int = 0
    impressions: int = 0
    failed_deliveries: int = 0  # records reported back for a retry (they come again)
    redelivered: int = 0  # settled records delivered again after a retry, not counted above
    batches: int = 0
    _settled: set[str] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, parsed: Sequence[Parsed], outcome: BatchOutcome) -> None:
        failed = set(outcome.failed_sequence_numbers)
        with self._lock:
            self.batches += 1
            self.failed_deliveries += len(failed)
            again_events = again_rejections = again_impressions = 0
            for record in parsed:
                number = record.record.sequence_number
                if number in failed:
                    continue
                if number not in self._settled:
                    self._settled.add(number)
                    continue
                self.redelivered += 1
                if record.event is not None:
                    again_events += 1
                elif record.rejection is not None:
                    again_rejections += 1
                else:
                    again_impressions += 1
            self.processed += outcome.processed
            self.duplicates += outcome.duplicates - again_events
            self.dead_lettered += outcome.dead_lettered - again_rejections
            self.impressions += outcome.impressions - again_impressions

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if not name.startswith("_")}


def count_event_processing(totals: EventTotals) -> None:
    """Every ``EventProcessor.apply`` of this process adds its outcome to ``totals`` (the handler builds
    its processor inside the twin's function turn; the class is shared)."""
    apply = EventProcessor.apply

    def counted(self: EventProcessor, parsed: Sequence[Parsed]) -> BatchOutcome:
        outcome = apply(self, parsed)
        totals.add(parsed, outcome)
        return outcome

    EventProcessor.apply = counted  # type: ignore[method-assign]


def dead_letter_queue(twin: Twin) -> dict[str, int]:
    """What the dead-letter queue holds: bad records (distinct stream records) and the mapping's
    records parked after their retries, read without deleting (invisible for the rest of the run)."""
    sqs, url = twin.client("sqs"), twin.state()["dead_letter_queue_url"]
    records: set[str] = set()
    messages = parked = 0
    while True:
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=3600)
        if not received.get("Messages"):
            break
        for message in received["Messages"]:
            messages += 1
            body = json.loads(message["Body"])
            if "sequence_number" in body:
                records.add(body["sequence_number"])
            elif "KinesisBatchInfo" in body:
                parked += int(body["KinesisBatchInfo"]["batchSize"])
    return {"messages": messages, "bad_records": len(records), "parked_records": parked}


def answer(out: TextIO, document: dict[str, Any]) -> None:
    out.write(json.dumps(document) + "\n")
    out.flush()


def serve_commands(twin: Twin, totals: EventTotals, commands: TextIO, out: TextIO) -> None:
    assert twin.moto is not None
    for line in commands:
        command = json.loads(line)
        action = command.get("do")
        try:
            if action == "faults":
                answer(out, twin.moto.set_faults(**command.get("settings", {})))
            elif action == "reload":
                answer(out, {"reload_seconds": twin.reload_serving()})
            elif action == "settle":
                twin.settle()
                answer(out, {"settled": True})
            elif action == "counts":
                poller = twin.poller.stats if twin.poller else None
                answer(
                    out,
                    {
                        "events": totals.as_dict(),
                        "dead_letter_queue": dead_letter_queue(twin),
                        "mapping": {
                            "exhausted_records": poller.records_exhausted if poller else 0,
                            "too_old_records": poller.records_too_old if poller else 0,
                            "retries": poller.retries if poller else 0,
                        },
                    },
                )
            elif action == "stop":
                answer(out, {"stopped": True})
                return
            else:
                answer(out, {"error": f"unknown command {action!r}"})
        except Exception as error:  # said to the load runner, which decides; the twin keeps serving
            answer(out, {"error": f"{type(error).__name__}: {error}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_twin.load_twin", description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="the shop to train on and serve")
    parser.add_argument("--work", type=Path, required=True, help="the twin's working directory")
    parser.add_argument("--workers", type=int, default=2, help="front worker processes")
    args = parser.parse_args(argv)
    # Replies own this process's stdout; everything else printed (handlers' logs, training) goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    totals = EventTotals()
    count_event_processing(totals)
    twin = Twin(args.work, front_workers=args.workers)
    try:
        twin.start()
        twin.load_data(args.data)
        twin.train_and_publish()
        twin.serve()
        answer(replies, {"state": twin.state()})
        serve_commands(twin, totals, sys.stdin, replies)
    finally:
        twin.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
