"""Compare our ``graflow`` with the published peer (``graflow==0.2.0``) in one run.

Usage (with our dev interpreter, where our ``graflow`` is importable)::

    python benchmarks/run_core.py            # 5 interleaved rounds, ~1 minute
    python benchmarks/run_core.py --rounds 9 --json-out core.json

``bench_core.py`` is run under this interpreter (``sys.executable``, "ours") and
under the peer venv's python (created on demand by ``peer_env.sh``). The two
cannot share a process -- both are imported as ``graflow`` -- so the runs are
interleaved ABAB / BABA across rounds: a slow patch of the (shared, 2-core)
machine then hits both sides instead of skewing one. Raw samples of all rounds
are pooled per side and the median is reported.

The table ends with the goals from the plan. This script reports; it exits 0
whether or not the goals are met, and also when one side fails to run (its
error is printed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH = HERE / "bench_core.py"
PEER_ENV = HERE / "peer_env.sh"


@dataclass
class Side:
    """One implementation under test and everything its runs reported."""

    label: str
    python: str | None
    samples: dict[str, list[float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dead: bool = False  # set when it produced nothing at all: later rounds skip it

    def median(self, metric: str) -> float | None:
        values = self.samples.get(metric)
        return median(values) if values else None


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    digits: int


METRICS = (
    Metric("chain_exec_us_per_task", "per-task overhead, chain (execute)", "us/task", 2),
    Metric("chain_build_us_per_task", "  chain build (define + >>), info", "us/task", 2),
    Metric("small_exec_ms", "small run a>>b>>c, execute only", "ms", 3),
    Metric("small_build_exec_ms", "small run a>>b>>c, build + execute", "ms", 3),
    Metric("small_first_exec_ms", "  first execute in process, info", "ms", 2),
    Metric("import_ms", "python -c 'import graflow'", "ms", 1),
    Metric("python_startup_ms", "  python -c pass (baseline), info", "ms", 1),
)

METRIC_BY_KEY = {m.key: m for m in METRICS}


@dataclass(frozen=True)
class Goal:
    """A target from the plan; ``check(ours, peer)`` is None when it cannot be judged."""

    text: str
    metric: str
    check: Callable[[float, float | None], bool | None]


def _ratio_at_least(factor: float) -> Callable[[float, float | None], bool | None]:
    return lambda ours, peer: None if peer is None else peer / ours >= factor


def _below(limit: float) -> Callable[[float, float | None], bool | None]:
    return lambda ours, _peer: ours < limit


def _at_most(limit: float) -> Callable[[float, float | None], bool | None]:
    return lambda ours, _peer: ours <= limit


GOALS = (
    Goal("per-task overhead >= 8x lower than peer", "chain_exec_us_per_task", _ratio_at_least(8.0)),
    Goal("per-task overhead <= 6 us (plan's figure)", "chain_exec_us_per_task", _at_most(6.0)),
    Goal("small-run fixed cost (execute) < 1 ms", "small_exec_ms", _below(1.0)),
    Goal("small-run fixed cost (build + execute) < 1 ms", "small_build_exec_ms", _below(1.0)),
    Goal("import graflow < 100 ms", "import_ms", _below(100.0)),
)


def find_peer_python(explicit: str | None) -> tuple[str | None, str | None]:
    """The peer interpreter (creating its venv if needed), or ``(None, error)``."""
    if explicit:
        return explicit, None
    proc = subprocess.run(["bash", str(PEER_ENV)], capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        # pip's stderr can be long (and noisy with index warnings); its tail has the cause.
        return None, f"peer_env.sh failed (exit {proc.returncode}):\n" + _tail(proc.stderr, 30)
    return lines[-1], None


def _tail(text: str, n: int) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def run_round(side: Side, bench_args: list[str], timeout: float) -> None:
    """Run bench_core.py once under ``side.python`` and pool what it reports."""
    assert side.python is not None
    try:
        proc = subprocess.run(
            [side.python, str(BENCH), *bench_args], capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        side.errors.setdefault("run", f"{type(exc).__name__}: {exc}")
        side.dead = not side.samples
        return
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        side.errors.setdefault(
            "run", f"exit {proc.returncode}, no JSON on stdout; stderr:\n{_tail(proc.stderr, 30)}"
        )
        side.dead = not side.samples
        return
    for key, values in report.get("samples", {}).items():
        side.samples.setdefault(key, []).extend(values)
    for key in ("python_version", "graflow_file", "graflow_version", "shims", "isolation"):
        if key in report:
            side.info[key] = report[key]
    for section, error in report.get("errors", {}).items():
        side.errors.setdefault(section, error)
    if proc.returncode == 0 and proc.stderr.strip():
        lines = proc.stderr.strip().splitlines()
        note = f"wrote {len(lines)} line(s) to stderr while benchmarking, e.g. {lines[0][:160]!r}"
        if note not in side.notes:
            side.notes.append(note)
    side.dead = not side.samples


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(ours: Side, peer: Side, header: str) -> str:
    """The comparison table, the goals, and where each side's graflow came from."""
    rows = [("metric", "unit", ours.label, peer.label, "peer/ours")]
    for m in METRICS:
        o, p = ours.median(m.key), peer.median(m.key)
        ratio = f"{p / o:.1f}x" if o and p else "-"
        rows.append((m.label, m.unit, _fmt(o, m.digits), _fmt(p, m.digits), ratio))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    out = [header, ""]
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(row[2:], widths[2:], strict=True)]
        out.append("  ".join(cells))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))

    out += ["", "Goals (ours):"]
    for goal in GOALS:
        o, p = ours.median(goal.metric), peer.median(goal.metric)
        if o is None:
            out.append(f"  [n/a ] {goal.text}: ours did not run")
            continue
        verdict = goal.check(o, p)
        status = "n/a " if verdict is None else "PASS" if verdict else "FAIL"
        metric = METRIC_BY_KEY[goal.metric]
        detail = f"ours {_fmt(o, metric.digits)} {metric.unit}"
        if p:
            detail += f", peer/ours {p / o:.1f}x"
        out.append(f"  [{status}] {goal.text}: {detail}")

    for side in (ours, peer):
        out += ["", f"{side.label}: {side.python or '(no interpreter)'}"]
        if "graflow_file" in side.info:
            out.append(f"  graflow {side.info.get('graflow_version')} from {side.info.get('graflow_file')}")
            shims = side.info.get("shims") or []
            out.append(f"  API shims: {', '.join(shims) if shims else 'none'}")
        counts = {k: len(v) for k, v in side.samples.items()}
        if counts:
            out.append(f"  samples: {counts}")
        out += [f"  note: {n}" for n in side.notes]
        for section, error in side.errors.items():
            out.append(f"  ERROR in {section}:")
            out += ["    " + line for line in error.rstrip().splitlines()]
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Core engine: ours vs graflow==0.2.0, interleaved.")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per side (default 5)")
    parser.add_argument("--chain-n", type=int, default=5000, help="tasks in the chain (default 5000)")
    parser.add_argument("--chain-repeats", type=int, default=1, help="chain samples per round (default 1)")
    parser.add_argument(
        "--small-repeats", type=int, default=300, help="small-run samples per round (default 300)"
    )
    parser.add_argument("--import-runs", type=int, default=2, help="import samples per round (default 2)")
    parser.add_argument(
        "--ours-python", default=sys.executable, help="interpreter for ours (default: this one)"
    )
    parser.add_argument("--peer-python", default=None, help="interpreter for the peer (default: peer_env.sh)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per bench_core.py run")
    parser.add_argument("--json-out", type=Path, default=None, help="also write pooled samples here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    peer_python, peer_error = find_peer_python(args.peer_python)
    ours = Side("ours", args.ours_python)
    peer = Side("peer 0.2.0", peer_python)
    if peer_error:
        peer.errors["setup"] = peer_error
        peer.dead = True
    bench_args = [
        f"--chain-n={args.chain_n}",
        f"--chain-repeats={args.chain_repeats}",
        f"--small-repeats={args.small_repeats}",
        f"--import-runs={args.import_runs}",
    ]
    for rnd in range(args.rounds):
        order = (ours, peer) if rnd % 2 == 0 else (peer, ours)
        for side in order:
            if side.python is not None and not side.dead:
                print(f"round {rnd + 1}/{args.rounds}: {side.label}", file=sys.stderr, flush=True)
                run_round(side, bench_args, args.timeout)
    header = (
        f"Core engine benchmark: medians over {args.rounds} interleaved rounds; chain of "
        f"{args.chain_n} no-op tasks x{args.chain_repeats}, small run x{args.small_repeats}, "
        f"import x{args.import_runs} per round."
    )
    print(render(ours, peer, header))
    if args.json_out is not None:
        payload = {
            s.label: {
                "python": s.python,
                **s.info,
                "medians": {k: median(v) for k, v in s.samples.items() if v},
                "samples": s.samples,
                "errors": s.errors,
            }
            for s in (ours, peer)
        }
        args.json_out.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
