"""Human in the loop: from ``provide_feedback`` in another process to the waiting task carrying on.

One task asks ``--questions`` questions in a row (``request_text_input``) and notes the
wall-clock time right after each answer reaches it. A separate *answering* process
watches the pending requests and answers each one, noting the time right before its
``provide_feedback``. The latency of a question is the difference (both processes read
the same clock). Sides, each measured in the same run:

* ``ours, task on a worker``: the run is on the Redis queue, the task runs on a real
  ``graflow-worker`` process and blocks on its request (``BLPOP``);
* ``ours, task in the driver``: a memory-queue run kept in the Redis store, so the
  asking task is in the driver process, as the peer's is;
* ``ours, local store``: a durable local run; the answering process writes the SQLite
  file and the task polls it (50 ms, slowing to 500 ms);
* ``peer``: the published ``graflow==0.2.0`` (``peer_env.sh``), Redis feedback backend,
  task in the driver; its own answering process.

Usage::

    /work/venv/bin/python benchmarks/bench_hitl.py                 # ours, 3 sides
    /work/venv/bin/python benchmarks/bench_hitl.py --peer          # plus the peer
    /work/venv/bin/python benchmarks/bench_hitl.py --questions 100 --json

Goal (issue 12): p50 under 50 ms on Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
#: The peer keeps its feedback keys unprefixed: a database of its own keeps them apart.
PEER_DB = 12
ASK_TIMEOUT = 60.0


# --- the answering process -----------------------------------------------------------------------


def answer_ours(store: dict[str, Any], count: int) -> list[float]:
    """Answer ``count`` questions of the store, in order; the time each ``provide_feedback`` started."""
    from graflow.hitl import FeedbackManager, FeedbackResponse

    manager = FeedbackManager.for_store(store)
    started: list[float] = []
    seen: set[str] = set()
    while len(started) < count:
        fresh = [r for r in manager.list_pending_requests() if r.feedback_id not in seen]
        if not fresh:
            time.sleep(0.001)
            continue
        request = fresh[0]
        seen.add(request.feedback_id)
        started.append(time.time())
        manager.provide_feedback(
            request.feedback_id, FeedbackResponse(text=request.prompt, responded_by="bench")
        )
    return started


def answer_peer(count: int) -> list[float]:
    from graflow.hitl.manager import FeedbackManager  # the peer's
    from graflow.hitl.types import FeedbackResponse, FeedbackType

    manager = FeedbackManager(
        backend="redis", backend_config={"host": "127.0.0.1", "port": 6379, "db": PEER_DB}
    )
    started: list[float] = []
    seen: set[str] = set()
    while len(started) < count:
        fresh = [r for r in manager.list_pending_requests() if r.feedback_id not in seen]
        if not fresh:
            time.sleep(0.001)
            continue
        request = fresh[0]
        seen.add(request.feedback_id)
        started.append(time.time())
        response = FeedbackResponse(
            feedback_id=request.feedback_id,
            response_type=FeedbackType.TEXT,
            text=request.prompt,
            responded_by="bench",
        )
        manager.provide_feedback(request.feedback_id, response)
    return started


# --- the asking side -------------------------------------------------------------------------------


def asking_workflow(count: int) -> Any:
    from graflow import task, workflow

    with workflow("bench_hitl") as wf:

        @task(inject_context=True)
        def ask(ctx: Any) -> list[float]:
            woke = []
            for number in range(count):
                ctx.request_text_input(f"q{number}", timeout=ASK_TIMEOUT)
                woke.append(time.time())
            return woke

    return wf


def run_peer_side(count: int) -> list[float]:
    """Under the peer's interpreter: one task asks ``count`` questions through Redis."""
    from graflow.core.context import ExecutionContext
    from graflow.core.decorators import task
    from graflow.core.engine import WorkflowEngine
    from graflow.core.workflow import workflow

    with workflow("bench_hitl_peer") as wf:

        @task(inject_context=True)
        def ask(ctx: Any) -> list[float]:
            woke = []
            for number in range(count):
                ctx.request_feedback(feedback_type="text", prompt=f"q{number}", timeout=ASK_TIMEOUT)
                woke.append(time.time())
            return woke

        import redis

        client = redis.Redis(host="127.0.0.1", port=6379, db=PEER_DB, decode_responses=True)
        context = ExecutionContext.create(
            wf.graph, "ask", channel_backend="redis", config={"redis_client": client}
        )
        WorkflowEngine().execute(context)
        return context.get_result("ask")  # type: ignore[no-any-return]


def answering_process(argv: list[str], python: str = sys.executable) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [python, str(Path(__file__).resolve()), "--answer", *argv],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tempfile.gettempdir(),
    )


def collect(answerer: subprocess.Popen[str]) -> list[float]:
    out, _ = answerer.communicate(timeout=ASK_TIMEOUT * 2)
    if answerer.returncode != 0:
        raise RuntimeError(f"the answering process failed (status {answerer.returncode})")
    return json.loads(out.splitlines()[-1])  # type: ignore[no-any-return]


def side_ours(kind: str, count: int) -> list[float]:
    """Latencies (seconds) of ``count`` questions on one of our sides."""
    prefix = f"bench-hitl-{uuid.uuid4().hex[:8]}"
    redis_store = {"redis_url": REDIS_URL, "key_prefix": prefix}
    worker = None
    with tempfile.TemporaryDirectory() as state:
        if kind == "local":
            store: dict[str, Any] = {"state_dir": state}
            options: dict[str, Any] = {"durable": True, "config": store}
        elif kind == "driver":
            store = redis_store
            options = {"config": {**redis_store, "state_store": "redis"}}
        else:
            store = redis_store
            options = {"queue_backend": "redis", "channel_backend": "redis", "config": redis_store}
            worker = subprocess.Popen(
                [sys.executable, "-m", "graflow_worker", "--redis-url", REDIS_URL, "--key-prefix", prefix],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=state,
            )
        answerer = answering_process(["ours", json.dumps(store), str(count)])
        try:
            context = asking_workflow(count).create_context(**options)
            from graflow.core.engine import WorkflowEngine

            WorkflowEngine().execute(context)
            woke = context.get_result("ask")
            answered = collect(answerer)
        finally:
            for process in (answerer, worker):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()
            _delete_prefix(prefix)
    return [w - a for w, a in zip(woke, answered, strict=True)]


def side_peer(count: int, python: str) -> list[float]:
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=PEER_DB).flushdb()
    answerer = answering_process(["peer", "{}", str(count)], python)
    asker = subprocess.run(
        [python, str(Path(__file__).resolve()), "--peer-side", str(count)],
        capture_output=True,
        text=True,
        timeout=ASK_TIMEOUT * 2,
        cwd=tempfile.gettempdir(),
    )
    if asker.returncode != 0:
        answerer.kill()
        raise RuntimeError(f"the peer's run failed:\n{asker.stderr[-3000:]}")
    woke = json.loads(asker.stdout.splitlines()[-1])
    answered = collect(answerer)
    return [w - a for w, a in zip(woke, answered, strict=True)]


def _delete_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=50, help="questions per side (default 50)")
    parser.add_argument("--peer", action="store_true", help="measure the peer too (benchmarks/peer_env.sh)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--answer", nargs=3, metavar=("SIDE", "STORE", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--peer-side", type=int, metavar="COUNT", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.answer is not None:
        side, store, count = args.answer
        started = answer_peer(int(count)) if side == "peer" else answer_ours(json.loads(store), int(count))
        print(json.dumps(started))
        return 0
    if args.peer_side is not None:
        print(json.dumps(run_peer_side(args.peer_side)))
        return 0

    sides = {
        "ours, task on a worker (Redis)": lambda: side_ours("worker", args.questions),
        "ours, task in the driver (Redis)": lambda: side_ours("driver", args.questions),
        "ours, local store (SQLite)": lambda: side_ours("local", args.questions),
    }
    if args.peer:
        peer_python = subprocess.run(
            ["bash", str(HERE / "peer_env.sh")], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
        # The peer's Redis feedback backend needs redis-py, which its base install leaves out.
        subprocess.run([peer_python, "-m", "pip", "install", "--quiet", "redis"], check=True, timeout=600)
        sides["peer 0.2.0, task in the driver (Redis)"] = lambda: side_peer(args.questions, peer_python)
    results = {name: summary(measure()) for name, measure in sides.items()}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'side':<42} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}")
    for name, row in results.items():
        print(f"{name:<42} {row['n']:>4} {row['p50_ms']:>8} {row['p90_ms']:>8} {row['max_ms']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
