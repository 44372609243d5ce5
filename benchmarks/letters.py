"""How fast the store takes dead letters: the rate a flood's letters reach the disk.

Each run is a fresh store in a new temporary directory. ``--letters`` letters (each a real
``logger.error`` record's notification, about 650 bytes of JSON) are handed to
:class:`~discord_logging.store.Store` as the delivery path hands them when Discord is down:
``keep(letter)``, with (``+ history``) or without its history entry (``record``), as fast as
one thread can. The store's writer thread writes them, as it does in an application; the run
ends when nothing is buffered or in flight. Played with the store's transaction size now
(``WRITE_CHUNK``) and with 20 letters a transaction (the size before issue 30), side by side.

    uv run python benchmarks/letters.py [--letters 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from discord_logging.capture.snapshot import snapshot, to_notification
from discord_logging.deadletters import DeadLetter, DeadLetterReason
from discord_logging.notification import DeliveryStatus, Notification, NotificationResult
from discord_logging.store import Store, _full

OLD_CHUNK = 20
DESTINATION = "111111111111111111"


def notifications(count: int) -> list[Notification]:
    formatter = logging.Formatter()
    out = []
    for i in range(count):
        record = logging.LogRecord(
            "shop.orders", logging.ERROR, "/srv/app/shop/orders.py", 123,
            "order %s failed: card declined", (i,), None, func="checkout",
        )  # fmt: skip
        out.append(to_notification(snapshot(record, "error", formatter)))
    return out


def one_run(notes: list[Notification], chunk: int, history: bool) -> float:
    """Letters a second from the first ``keep`` until the writer has written them all."""
    _full.WRITE_CHUNK = chunk  # type: ignore[misc]  # the benchmark's two sizes
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp))
        store.write_buffered()  # open the store first: its opening is not a write's cost
        letters = [
            (n, DeadLetter(n, "error", DeadLetterReason.CIRCUIT_OPEN, destination=DESTINATION))
            for n in notes
        ]
        result = NotificationResult(
            notes[0].id, DeliveryStatus.DEAD_LETTERED, attempts=1, http_status=503
        )
        began = time.perf_counter()
        for note, letter in letters:
            if history:
                store.record(note, result, "error")
            store.keep(letter)
        while store.buffered:  # the writer takes what waits (a cheap look: a length)
            time.sleep(0.002)
        store.write_buffered()  # waits for the write in flight (its lock); nothing is left
        spent = time.perf_counter() - began
        written = len(store.durable) if store.durable is not None else 0
        if written != len(notes):
            raise SystemExit(f"the store holds {written} letters of {len(notes)}")
        store.close()
    return len(notes) / spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    now = _full.WRITE_CHUNK
    notes = notifications(args.letters)
    print(f"{args.letters:,} letters a run, {args.rounds} rounds; median (min-max) letters/s")
    for history in (False, True):
        rates = {}
        for chunk in (now, OLD_CHUNK):
            got = [one_run(notes, chunk, history) for _ in range(args.rounds)]
            rates[chunk] = statistics.median(got)
            label = f"{chunk} a transaction{' + history' if history else ''}"
            print(f"  {label:<28} {rates[chunk]:>9,.0f}   ({min(got):,.0f}-{max(got):,.0f})")
        print(f"  ratio {now} / {OLD_CHUNK}: {rates[now] / rates[OLD_CHUNK]:.2f}x")
    _full.WRITE_CHUNK = now  # type: ignore[misc]


if __name__ == "__main__":
    main()
