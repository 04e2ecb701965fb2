"""Latency of Redis channel operations: what a task pays per ``set`` / ``get`` / ``atomic_add``.

Each operation is timed one call at a time against a real Redis (default
``redis://127.0.0.1:6379/0``, or ``--redis-url``), next to the floor set by the
network round trip (the plain redis-py command it maps to) and to the in-memory
channel. Prints a table of p50 / p99 in microseconds; ``--json`` prints the raw
figures instead. Every key lives under a fresh key prefix that is deleted at the end.

    python benchmarks/bench_redis.py                 # 5,000 samples per operation
    python benchmarks/bench_redis.py -n 20000 --json

Throughput and end-to-end task latency on a worker fleet are measured by the
graflow-worker benchmarks; this file is only about the channel.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from graflow.channels.memory import MemoryChannel
from graflow_redis.channel import RedisChannel


def sample(operation: Callable[[], Any], n: int, warmup: int = 200) -> list[float]:
    """Microseconds per call, one timed call at a time."""
    for _ in range(warmup):
        operation()
    gc.collect()
    timer = time.perf_counter_ns
    out = []
    for _ in range(n):
        start = timer()
        operation()
        out.append((timer() - start) / 1000)
    return out


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": round(statistics.median(ordered), 1),
        "p99_us": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "mean_us": round(statistics.fmean(ordered), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("-n", "--samples", type=int, default=5000)
    parser.add_argument("--json", action="store_true", help="print raw figures as JSON")
    args = parser.parse_args(argv)

    client = redis.Redis.from_url(args.redis_url)
    try:
        client.ping()
    except redis.RedisError as exc:
        sys.stderr.write(f"no Redis at {args.redis_url} ({exc}); start one or pass --redis-url\n")
        return 2

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    channel = RedisChannel("bench", client, key_prefix=prefix)
    memory = MemoryChannel("bench")
    value = {"batch_size": 100, "tags": ["a", "b"], "ratio": 0.5}
    channel.set("config", value)
    memory.set("config", value)
    raw_key = f"{prefix}:raw"
    client.set(raw_key, b"x" * 64)
    n = args.samples
    try:
        figures = {
            "redis-py SET (floor)": summary(sample(lambda: client.set(raw_key, b"x" * 64), n)),
            "redis-py GET (floor)": summary(sample(lambda: client.get(raw_key), n)),
            "RedisChannel.set": summary(sample(lambda: channel.set("config", value), n)),
            "RedisChannel.set(ttl=60)": summary(sample(lambda: channel.set("config", value, ttl=60), n)),
            "RedisChannel.get": summary(sample(lambda: channel.get("config"), n)),
            "RedisChannel.atomic_add(int)": summary(sample(lambda: channel.atomic_add("hits", 1), n)),
            "RedisChannel.atomic_add(float)": summary(sample(lambda: channel.atomic_add("total", 0.5), n)),
            "RedisChannel.append": summary(sample(lambda: channel.append("log", 1), n)),
            "MemoryChannel.set": summary(sample(lambda: memory.set("config", value), n)),
            "MemoryChannel.get": summary(sample(lambda: memory.get("config"), n)),
            "MemoryChannel.atomic_add": summary(sample(lambda: memory.atomic_add("hits", 1), n)),
        }
        assert channel.get("hits") == n + 200, "atomic_add lost increments"
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)

    info = client.info("server")
    meta = {"redis_url": args.redis_url, "redis_version": info.get("redis_version"), "samples": n}
    if args.json:
        print(json.dumps({"meta": meta, "figures": figures}, indent=2))
        return 0
    print(f"Redis {meta['redis_version']} at {args.redis_url}, {n} samples per operation")
    print(f"{'operation':34} {'p50 µs':>9} {'p99 µs':>9} {'mean µs':>9}")
    for name, row in figures.items():
        print(f"{name:34} {row['p50_us']:>9} {row['p99_us']:>9} {row['mean_us']:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
