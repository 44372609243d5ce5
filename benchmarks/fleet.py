"""Many processes, many webhooks, one channel: what a fleet of workers does to Discord's limits.

Runs N = 1, 4 and 8 worker processes, forked (the handler is built before the fork, like
``gunicorn --preload``) and spawned (each builds its own), each logging distinct records to
one webhook, plus 8 forked processes over two webhooks in one channel; each row once with
the one-host store (every process on one store directory) and once with Redis (a
``redis-server`` started here on a free loopback port, nothing saved, stopped at the end).
FakeDiscord runs in this process at Discord's default limits (5 requests / 2 s announced
per webhook, 30 messages / 60 s hidden per channel, 50 requests / s global); the workers
reach it over HTTP. Each worker logs, calls ``flush(60)`` and ``close()``, and exits; when
records are still missing, one more process per webhook starts on the same store ("whichever
process runs next") and what it delivers is counted apart.

Prints per row: records delivered, duplicates, 429s by scope, lost, peak messages in any
60 s per channel and records per minute per channel, each against its target.

    uv run python benchmarks/fleet.py [--rows 'fork-*-store'] [--records 300] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import fnmatch
import inspect
import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _fleet_worker import PROBE_TEXT, run_forked, run_next, run_spawned

from discord_logging import DiscordHandler
from discord_logging.settings import FIELD_NAMES
from discord_logging.testing import FakeDiscord, ReceivedMessage, RequestRecord
from discord_logging.testing._records import most_in_window

TARGETS = {
    "429s": "0",
    "duplicates": "0",
    "lost": "0",
    "peak": "<= 30 messages in any 60 s per channel",
    "per_minute": ">= 1,500 records a minute per channel",
}
PEAK_LIMIT = 30
PER_MINUTE_TARGET = 1_500
CHANNEL_WINDOW = 60.0
SHARED_CHANNEL = "1000000000000004242"  # both webhooks of a two-webhook row post here
RECORD_ID = re.compile(r"fleet p(\d{2}) r(\d{4})\b")
NEXT_BOUND = 120.0  # seconds the process that runs next gets to redeliver


@dataclass(frozen=True)
class Row:
    """One configuration: how workers start, how many, over how many webhooks, which backend."""

    mode: str  # "fork" or "spawn"
    procs: int
    webhooks: int
    backend: str  # "store" or "redis"

    @property
    def name(self) -> str:
        hooks = f"x{self.webhooks}" if self.webhooks > 1 else ""
        return f"{self.mode}-{self.procs}{hooks}-{self.backend}"


def all_rows(quick: bool) -> list[Row]:
    """Every row, store rows first; ``quick`` swaps in small process counts."""
    shapes = (
        [("fork", 1, 1), ("spawn", 2, 1), ("fork", 2, 2)]
        if quick
        else [
            ("fork", 1, 1),
            ("fork", 4, 1),
            ("fork", 8, 1),
            ("spawn", 1, 1),
            ("spawn", 4, 1),
            ("spawn", 8, 1),
            ("fork", 8, 2),
        ]
    )
    return [Row(m, n, w, backend) for backend in ("store", "redis") for m, n, w in shapes]


# -- what this build of the library and of FakeDiscord can do ---------------------------------


def redis_support() -> str | None:
    """How to hand a Redis URL to the handler: ``keyword``, ``env`` or None (not in this build)."""
    if "redis_url" in inspect.signature(DiscordHandler.__init__).parameters:
        return "keyword"
    if "redis_url" in FIELD_NAMES:
        return "env"
    return None


def add_webhooks(fake: FakeDiscord, count: int) -> tuple[list[str], str | None]:
    """``count`` webhooks; several share one channel. Returns the URLs and a note when this
    FakeDiscord cannot say ``channel_id=``."""
    params = inspect.signature(fake.add_webhook).parameters
    if count == 1:
        return [fake.add_webhook()], None
    if "channel_id" in params:
        return [fake.add_webhook(channel_id=SHARED_CHANNEL) for _ in range(count)], None
    if "channel" in params:
        urls = [fake.add_webhook(channel=SHARED_CHANNEL) for _ in range(count)]
        return urls, "FakeDiscord.add_webhook has no channel_id= here; used its channel="
    urls = [fake.add_webhook() for _ in range(count)]
    return urls, "FakeDiscord cannot put two webhooks in one channel here: each has its own"


def webhook_id(url: str) -> str:
    return url.rstrip("/").split("/")[-2]


def rate_limited_by_scope(fake: FakeDiscord) -> Counter[str]:
    """429s by what answered them: ``webhook`` (the announced bucket), ``channel`` (the hidden
    per-channel limit), ``global``, ``cloudflare``. FakeDiscord's own counter when it has one;
    otherwise replayed from its request log (the fake's checks are deterministic in order)."""
    counted = getattr(fake, "rate_limited_by_scope", None)
    if callable(counted):
        names = {"user": "webhook", "shared": "channel"}
        return Counter({names.get(k, k): v for k, v in counted().items()})
    return replay_scopes(fake.requests, fake.webhook_limit, fake.webhook_window)


def replay_scopes(requests: list[RequestRecord], limit: int, window: float) -> Counter[str]:
    """Classify 429s without the fake's help: both the webhook bucket and the hidden channel
    limit answer with scope ``user``. The fake takes a bucket slot for every POST that gets
    past the global limit, then checks the channel; so replaying the buckets over the log says
    which one refused (a 429 while the bucket had room came from the channel)."""
    from discord_logging.testing._limits import FixedWindow

    buckets: dict[str, FixedWindow] = {}
    scopes: Counter[str] = Counter()
    for r in requests:
        if r.method != "POST" or r.webhook_id is None:
            continue
        if r.status == 429 and not r.had_via:
            scopes["cloudflare"] += 1
            continue
        if r.status == 429 and r.scope == "global":
            scopes["global"] += 1
            continue
        bucket = buckets.setdefault(r.webhook_id, FixedWindow(limit, window))
        refused_by_bucket = bucket.try_acquire(r.time) > 0
        if r.status == 429:
            scopes["webhook" if refused_by_bucket else "channel"] += 1
    return scopes


# -- reading what Discord received -----------------------------------------------------------


def message_texts(message: ReceivedMessage) -> list[str]:
    """Every text a record can travel in: content, embeds (title, description, fields,
    footer) and attached files (a digest's records.txt)."""
    texts = [message.content or ""]
    for embed in message.embeds:
        texts += [str(embed.get("title", "")), str(embed.get("description", ""))]
        texts += [f"{f.get('name', '')}\n{f.get('value', '')}" for f in embed.get("fields", [])]
        texts.append(str((embed.get("footer") or {}).get("text", "")))
    texts += [data.decode("utf-8", "replace") for _, data in message.files.values()]
    return texts


@dataclass
class Arrivals:
    """What FakeDiscord accepted, read incrementally: each record's messages, per channel."""

    channel_of: dict[str, str]
    seen: int = 0
    copies: Counter[tuple[int, int]] = field(default_factory=Counter)
    first_at: dict[tuple[int, int], float] = field(default_factory=dict)
    record_times: dict[str, list[float]] = field(default_factory=dict)
    message_times: dict[str, list[float]] = field(default_factory=dict)
    records_in: dict[str, set[tuple[int, int]]] = field(default_factory=dict)
    probes: int = 0

    def channel(self, message: ReceivedMessage) -> str:
        own = getattr(message, "channel_id", None)
        return str(own) if own else self.channel_of.get(message.webhook_id, message.webhook_id)

    def update(self, messages: list[ReceivedMessage]) -> None:
        for message in messages[self.seen :]:
            chan = self.channel(message)
            self.message_times.setdefault(chan, []).append(message.received_at)
            ids: set[tuple[int, int]] = set()
            texts = message_texts(message)
            for text in texts:
                ids.update((int(p), int(r)) for p, r in RECORD_ID.findall(text))
            if not ids and any(PROBE_TEXT in t for t in texts):
                self.probes += 1
            for rid in ids:
                self.copies[rid] += 1
                self.first_at.setdefault(rid, message.received_at)
                self.records_in.setdefault(chan, set()).add(rid)
            if ids:
                self.record_times.setdefault(chan, []).append(message.received_at)
        self.seen = len(messages)

    @property
    def distinct(self) -> int:
        return len(self.copies)


def peak_in_window(stamps: list[float], window: float = CHANNEL_WINDOW) -> int:
    """Most stamps in any ``window`` seconds (a sliding window over sorted times)."""
    return most_in_window(stamps, window)


# -- Redis ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway ``redis-server`` on a free loopback port: nothing saved, stopped at exit."""

    def __init__(self, binary: str) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="fleet-redis-")
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", self._dir]
        self._proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while self.command("PING") != "+PONG":
            if time.monotonic() > deadline or self._proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def command(self, *words: str) -> str:
        """One inline command; the first line of the answer, or '' when nobody answered."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall((" ".join(words) + "\r\n").encode())
                return sock.recv(256).decode(errors="replace").splitlines()[0]
        except (OSError, IndexError):
            return ""

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


# -- one row -----------------------------------------------------------------------------------


def summarise_stderr(logs: Path, limit: int = 4) -> list[str]:
    """The workers' stderr, grouped by line shape (numbers and paths folded), most common first."""
    shapes: Counter[str] = Counter()
    example: dict[str, str] = {}
    for path in sorted(logs.glob("stderr-*.txt")):
        for line in path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            shape = re.sub(r"\d+", "N", re.sub(r"/\S+", "<path>", line.strip()))
            shapes[shape] += 1
            example.setdefault(shape, line.strip())
    lines = [f"{count} x {example[shape][:150]}" for shape, count in shapes.most_common(limit)]
    if len(shapes) > limit:
        lines.append(f"... and {len(shapes) - limit} other kind(s) of line")
    return lines


def read_results(logs: Path, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(logs.glob(f"result-{prefix}*.json"))]


def sum_stats(results: list[dict[str, Any]], *names: str) -> dict[str, int]:
    return {name: sum(int(r["stats"].get(name, 0)) for r in results) for name in names}


def settings_for(url: str, fake: FakeDiscord, store: Path, redis_url: str | None) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "webhooks": {"general": url},
        "allowed_hosts": fake.host,
        "store_path": str(store),
        "aggregate_window": 0,  # every record is distinct anyway; no storm folding
    }
    if redis_url is not None and redis_support() == "keyword":
        settings["redis_url"] = redis_url
    return settings


def run_row(row: Row, records: int, bound: float, redis: RedisServer | None) -> dict[str, Any]:
    """Run one row and measure it; never raises for a failing worker (it is reported)."""
    result: dict[str, Any] = {"row": row.name, "records_per_process": records}
    redis_url = None
    if row.backend == "redis":
        if redis_support() is None:
            return {**result, "skipped": "redis: not available in this build"}
        if redis is None:
            return {**result, "skipped": "redis: no redis-server on this machine"}
        redis.command("FLUSHALL")
        redis_url = redis.url
    env = {"DISCORD_REDIS_URL": redis_url} if redis_url and redis_support() == "env" else {}
    work = Path(tempfile.mkdtemp(prefix=f"fleet-{row.name}-"))
    store, logs = work / "store", work / "logs"
    logs.mkdir()
    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # a forked worker inherits the parent's environment
    try:
        with FakeDiscord() as fake:
            return {**result, **_measure(row, records, bound, fake, store, logs, redis_url, env)}
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(work, ignore_errors=True)


def _measure(
    row: Row,
    records: int,
    bound: float,
    fake: FakeDiscord,
    store: Path,
    logs: Path,
    redis_url: str | None,
    env: dict[str, str],
) -> dict[str, Any]:
    urls, note = add_webhooks(fake, row.webhooks)
    channel_of = {
        webhook_id(u): SHARED_CHANNEL if row.webhooks > 1 else webhook_id(u) for u in urls
    }
    configs = [settings_for(u, fake, store, redis_url) for u in urls]
    ctx = multiprocessing.get_context(row.mode)
    start = (ctx.Semaphore(0), ctx.Event())  # (each worker: ready, all: go)
    expected = row.procs * records
    parent_handlers: list[DiscordHandler] = []
    if row.mode == "fork":  # built before forking, as gunicorn --preload does
        parent_handlers = [DiscordHandler(**c) for c in configs]
        workers = [
            ctx.Process(
                target=run_forked,
                args=(p, row.procs, records, parent_handlers[p % row.webhooks], start, str(logs)),
            )
            for p in range(row.procs)
        ]
    else:
        workers = [
            ctx.Process(
                target=run_spawned,
                args=(p, row.procs, records, configs[p % row.webhooks], env, start, str(logs)),
            )
            for p in range(row.procs)
        ]
    arrivals = Arrivals(channel_of)
    problems: list[str] = [note] if note else []
    for worker in workers:
        worker.start()
    if not _all_ready(start[0], workers, 180.0):
        problems.append("a worker did not reach the start line (see the stderr lines)")
    start[1].set()
    started = time.monotonic()
    deadline = started + bound
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    for worker in workers:
        if worker.is_alive():
            problems.append(f"worker pid {worker.pid} still running at the bound: terminated")
            worker.terminate()
            worker.join(5)
    bad_exits = [w.exitcode for w in workers if w.exitcode not in (0, None)]
    if bad_exits:
        problems.append(f"worker exit codes {bad_exits}")
    fleet_ended = time.monotonic()
    arrivals.update(fake.messages)
    workers_out = read_results(logs, "p")
    # What the store held when the last worker closed (the others may have redelivered what
    # an earlier one kept).
    last_out = max(workers_out, key=lambda r: float(r.get("closed_at", 0)), default=None)
    kept_at_exit = int(last_out["stats"].get("dead_letters_kept", 0)) if last_out else 0
    next_out: list[dict[str, Any]] = []
    next_started = None
    if arrivals.distinct < expected or kept_at_exit:
        next_started = time.monotonic()
        next_out = _run_next(configs, env, logs, expected, arrivals, fake)
    arrivals.update(fake.messages)
    for handler in parent_handlers:
        handler.close()
    return _figures(
        row,
        expected,
        arrivals,
        fake,
        started=started,
        fleet_ended=fleet_ended,
        next_started=next_started,
        workers_out=workers_out,
        next_out=next_out,
        kept_at_exit=kept_at_exit,
        problems=problems,
        stderr=summarise_stderr(logs),
    )


def _all_ready(ready: Any, workers: list[Any], bound: float) -> bool:
    """Wait until every worker said it is ready; False if one died first or at the bound."""
    deadline = time.monotonic() + bound
    count = 0
    while count < len(workers) and time.monotonic() < deadline:
        if ready.acquire(timeout=0.2):
            count += 1
        elif any(w.exitcode is not None for w in workers):
            return False
    return count == len(workers)


def _run_next(
    configs: list[dict[str, Any]],
    env: dict[str, str],
    logs: Path,
    expected: int,
    arrivals: Arrivals,
    fake: FakeDiscord,
) -> list[dict[str, Any]]:
    """One fresh process per webhook on the same store, until every record arrived or the
    bound; returns their reports."""
    ctx = multiprocessing.get_context("spawn")
    done = ctx.Event()
    procs = [
        ctx.Process(target=run_next, args=(f"next{i}", c, env, done, NEXT_BOUND, str(logs)))
        for i, c in enumerate(configs)
    ]
    for proc in procs:
        proc.start()
    deadline = time.monotonic() + NEXT_BOUND + 15
    while time.monotonic() < deadline and any(p.is_alive() for p in procs):
        arrivals.update(fake.messages)
        if arrivals.distinct >= expected:
            done.set()
        time.sleep(0.25)
    done.set()
    for proc in procs:
        proc.join(20)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    return read_results(logs, "next")


def _figures(
    row: Row,
    expected: int,
    arrivals: Arrivals,
    fake: FakeDiscord,
    *,
    started: float,
    fleet_ended: float,
    next_started: float | None,
    workers_out: list[dict[str, Any]],
    next_out: list[dict[str, Any]],
    kept_at_exit: int,
    problems: list[str],
    stderr: list[str],
) -> dict[str, Any]:
    scopes = rate_limited_by_scope(fake)
    duplicates = sum(1 for n in arrivals.copies.values() if n > 1)
    by_next = sum(1 for t in arrivals.first_at.values() if t >= next_started) if next_started else 0
    per_channel: dict[str, dict[str, float]] = {}
    for chan, stamps in arrivals.message_times.items():
        times = arrivals.record_times.get(chan, [])
        distinct = len(arrivals.records_in.get(chan, set()))
        # From the moment the workers began logging (the first record goes out at once, so
        # this is the first delivery give or take a request) to the channel's last record.
        span = (max(times) - started) if times else 0.0
        per_channel[chan] = {
            "messages": len(stamps),
            "peak_60s": peak_in_window(stamps),
            "distinct_records": distinct,
            "span_seconds": round(span, 1),
            "first_to_last_seconds": round(max(times) - min(times), 1) if times else 0.0,
            "records_per_minute": round(distinct / max(span, 0.1) * 60),
        }
    last = max(arrivals.first_at.values(), default=started)
    lost = expected - arrivals.distinct
    peak = max((c["peak_60s"] for c in per_channel.values()), default=0)
    rate = min((c["records_per_minute"] for c in per_channel.values()), default=0)
    total_429 = sum(scopes.values())
    return {
        "expected": expected,
        "delivered": arrivals.distinct,
        "delivered_by_fleet": arrivals.distinct - by_next,
        "delivered_by_next_process": by_next,
        "duplicates": duplicates,
        "extra_copies": sum(n - 1 for n in arrivals.copies.values() if n > 1),
        "429s": total_429,
        "429s_by_scope": dict(scopes),
        "lost": lost,
        "peak_messages_60s": peak,
        "records_per_minute": rate,
        "channels": per_channel,
        "messages": len(fake.messages),
        "probe_messages": arrivals.probes,
        "requests": len(fake.requests),
        "fleet_seconds": round(fleet_ended - started, 1),
        "last_record_after_seconds": round(last - started, 1),
        "workers": {
            "flush_ok": sum(1 for r in workers_out if r.get("flush_ok")),
            "reported": len(workers_out),
            "dead_letters_kept_at_exit": kept_at_exit,
            **sum_stats(workers_out, "delivered", "redelivered", "dead_lettered", "rate_limited"),
        },
        "next_process": [
            {
                "dead_letters_at_start": r["dead_letters_at_start"],
                "redelivered": r["stats"].get("redelivered", 0),
                "kept_at_close": r["stats"].get("dead_letters_kept", 0),
            }
            for r in next_out
        ],
        "pass": {
            "429s": total_429 == 0,
            "duplicates": duplicates == 0,
            "lost": lost == 0,
            "peak": peak <= PEAK_LIMIT,
            "per_minute": rate >= PER_MINUTE_TARGET,
        },
        "problems": problems,
        "stderr": stderr,
    }


# -- output ------------------------------------------------------------------------------------

HEADER = (
    f"{'row':<16} {'delivered':>11} {'dups':>9} {'429s wh/ch/gl':>20} {'lost':>9} "
    f"{'peak/60s':>10} {'rec/min/chan':>14} {'seconds':>8}"
)


def _mark(ok: bool) -> str:
    return "ok" if ok else "FAIL"


def format_row(r: dict[str, Any]) -> list[str]:
    if "skipped" in r:
        return [f"{r['row']:<16} skipped: {r['skipped']}"]
    ok, s = r["pass"], r["429s_by_scope"]
    split = f"{s.get('webhook', 0)}/{s.get('channel', 0)}/{s.get('global', 0)}"
    line = (
        f"{r['row']:<16} {r['delivered']:>5}/{r['expected']:<5} "
        f"{r['duplicates']:>4} {_mark(ok['duplicates']):<4} "
        f"{r['429s']:>4} ({split:>9}) {_mark(ok['429s']):<4} "
        f"{r['lost']:>4} {_mark(ok['lost']):<4} "
        f"{r['peak_messages_60s']:>5} {_mark(ok['peak']):<4} "
        f"{r['records_per_minute']:>9,} {_mark(ok['per_minute']):<4} "
        f"{r['last_record_after_seconds']:>8}"
    )
    w = r["workers"]
    lines = [
        line,
        f"    workers: flush(60) ok in {w['flush_ok']}/{w['reported']}, dead-lettered "
        f"{w['dead_lettered']}, redelivered {w['redelivered']}, 429s seen {w['rate_limited']}, "
        f"{w['dead_letters_kept_at_exit']} dead letter(s) in the store at the last exit "
        f"({r['fleet_seconds']} s)",
    ]
    if r["next_process"]:
        kept = max(n["dead_letters_at_start"] for n in r["next_process"])
        lines.append(
            f"    next process(es): {len(r['next_process'])}, the store held {kept} letter(s), "
            f"delivered {r['delivered_by_next_process']} record(s) not seen before"
        )
    for chan, c in r["channels"].items():
        lines.append(
            f"    channel {chan[-6:]}: {c['messages']} messages, {c['distinct_records']} "
            f"records over {c['span_seconds']} s"
        )
    lines += [f"    note: {p}" for p in r["problems"]]
    lines += [f"    stderr: {s}" for s in r["stderr"]]
    return lines


def print_intro(records: int, redis: RedisServer | None, out: Any, *, wanted: bool) -> None:
    support = redis_support()
    print(
        f"fleet.py: {records} distinct records per process, FakeDiscord at Discord's defaults "
        "(5 req/2 s per webhook, 30 msg/60 s hidden per channel, 50 req/s global)",
        file=out,
    )
    print(
        "targets per row: 0 429s, 0 duplicates, 0 lost, <= 30 messages in any 60 s per "
        "channel, >= 1,500 records a minute per channel",
        file=out,
    )
    if support is None:
        print("redis: not available in this build (DiscordHandler takes no redis_url)", file=out)
    elif redis is None and not wanted:
        print("redis: no Redis row chosen", file=out)
    elif redis is None:
        print("redis: no redis-server found; the Redis rows are skipped", file=out)
    else:
        print(f"redis: redis-server on 127.0.0.1:{redis.port}, passed as {support}", file=out)
    print(
        "how: delivered = distinct record texts found in FakeDiscord's messages (embeds, digest "
        "fields, records.txt); a duplicate is a record in more than one message; lost = "
        "expected - delivered after the fleet and the next process; peak = most messages in "
        "any sliding 60 s of one channel; rec/min = a channel's distinct records / (its last "
        "message carrying records - the moment the workers began logging) x 60 (the first "
        "record goes out at once, so that is the first delivery within a request; a burst "
        "shorter than a minute reads high); seconds = start to the last new record",
        file=out,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        default="*",
        help="comma-separated row names or patterns, e.g. 'fork-1-store,fork-4-*' (default all)",
    )
    parser.add_argument("--records", type=int, help="distinct records per process (default 300)")
    parser.add_argument("--quick", action="store_true", help="small smoke run: 1-2 processes")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--bound", type=float, help="seconds the fleet of a row may run (default 180)"
    )
    parser.add_argument("--redis-server", default="redis-server", help="redis-server binary")
    parser.add_argument("--list", action="store_true", help="list the row names and exit")
    args = parser.parse_args()
    # Forking while FakeDiscord's server threads run is the point (the workers never touch
    # them); Python 3.12+ warns about any fork in a threaded process.
    warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
    records = args.records or (20 if args.quick else 300)
    bound = args.bound or (40.0 if args.quick else 180.0)
    patterns = [p.strip() for p in args.rows.split(",") if p.strip()]
    rows = [r for r in all_rows(args.quick) if any(fnmatch.fnmatch(r.name, p) for p in patterns)]
    if args.list or not rows:
        names = ", ".join(r.name for r in all_rows(args.quick))
        print(f"rows: {names}" if args.list else f"no row matches {args.rows!r}; rows: {names}")
        sys.exit(0 if args.list else 2)
    out = sys.stderr if args.json else sys.stdout
    redis = None
    wants_redis = any(r.backend == "redis" for r in rows) and redis_support() is not None
    binary = shutil.which(args.redis_server)
    if wants_redis and binary is not None:
        redis = RedisServer(binary)
    results: list[dict[str, Any]] = []
    try:
        print_intro(records, redis, out, wanted=wants_redis)
        print(HEADER, file=out, flush=True)
        for row in rows:
            try:
                result = run_row(row, records, bound, redis)
            except Exception as exc:  # noqa: BLE001 - one broken row must not hide the others
                result = {"row": row.name, "skipped": f"error: {type(exc).__name__}: {exc}"}
            results.append(result)
            for line in format_row(result):
                print(line, file=out, flush=True)
    finally:
        if redis is not None:
            redis.stop()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print("\nsummary", file=out)
        print(HEADER, file=out)
        for result in results:
            print(format_row(result)[0], file=out)


if __name__ == "__main__":
    main()
