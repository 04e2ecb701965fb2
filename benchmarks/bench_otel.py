"""What graflow-otel costs: the core chain benchmark with and without it, and with the SDK.

Usage (run with the interpreter that has graflow-otel installed; ``--base-python`` is one
with the same graflow-core and without graflow-otel)::

    /work/venv-otel/bin/python benchmarks/bench_otel.py --base-python /work/venv/bin/python

1. **Installed, no SDK** (the OpenTelemetry default): ``bench_core.py``'s chain runs
   under both interpreters, taking turns for ``--rounds`` rounds so a slow stretch of the
   machine hits both; the samples are pooled and the medians compared. The goal is a
   slowdown of at most 10%.
2. **SDK configured**: in fresh processes of the graflow-otel interpreter, the same chain
   runs with an SDK ``TracerProvider``, a ``BatchSpanProcessor`` (default settings) and an
   exporter that drops every batch, and without any provider; the difference of the
   medians divided by the chain length is the cost of tracing one task (one span, its
   attributes, the wrapper path of the kernel).

Prints a table and a JSON object (``--json-out`` to keep it); exits 0 whatever the result.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from statistics import median
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH = HERE / "bench_core.py"


def _run(python: str, args: list[str], timeout: float = 900.0) -> dict[str, Any]:
    proc = subprocess.run([python, *args], capture_output=True, text=True, timeout=timeout)
    try:
        return dict(json.loads(proc.stdout))
    except json.JSONDecodeError:
        raise SystemExit(
            f"{python} {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        ) from None


def _has_otel(python: str) -> bool:
    code = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('graflow_otel') else 1)"
    return subprocess.run([python, "-c", code]).returncode == 0


def installed_no_sdk(base: str, otel: str, rounds: int, chain_n: int, repeats: int) -> dict[str, list[float]]:
    """Chain per-task samples under each interpreter, interleaved ABAB / BABA."""
    samples: dict[str, list[float]] = {"without": [], "with": []}
    # "small" runs first and warms the process up (plugin loading, lazy imports); only the
    # chain samples are compared.
    args = [
        str(BENCH),
        "--only",
        "small,chain",
        "--small-repeats=50",
        f"--chain-n={chain_n}",
        f"--chain-repeats={repeats}",
    ]
    for rnd in range(rounds):
        order = [("without", base), ("with", otel)]
        for label, python in order if rnd % 2 == 0 else reversed(order):
            print(f"round {rnd + 1}/{rounds}: {label} graflow-otel", file=sys.stderr, flush=True)
            report = _run(python, args)
            samples[label].extend(report["samples"]["chain_exec_us_per_task"])
    return samples


def sdk_child(mode: str, chain_n: int, repeats: int) -> None:
    """In this process: install the SDK (``mode == "sdk"``) or not, run the chain, print JSON."""
    sys.path.insert(0, str(HERE))
    import bench_core  # noqa: E402  (the workload, shared with run_core.py)

    api = bench_core.Api()
    bench_core.bench_small(api, 50)  # warm-up without spans: lazy imports, plugin loading
    exported = [0]
    provider = None
    if mode == "sdk":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

        class DropExporter(SpanExporter):
            """Counts and drops: the cost measured is Graflow's and the SDK's, not a network's."""

            def export(self, spans: Any) -> SpanExportResult:
                exported[0] += len(spans)
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(DropExporter()))
        trace.set_tracer_provider(provider)
    samples = bench_core.bench_chain(api, chain_n, repeats)["chain_exec_us_per_task"]
    if provider is not None:
        provider.force_flush()
    print(json.dumps({"samples": samples, "exported_spans": exported[0]}))


def with_sdk(otel: str, rounds: int, chain_n: int, repeats: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {"no provider": [], "sdk": []}
    exported = 0
    for rnd in range(rounds):
        order = ["no provider", "sdk"]
        for mode in order if rnd % 2 == 0 else reversed(order):
            print(f"round {rnd + 1}/{rounds}: {mode}", file=sys.stderr, flush=True)
            report = _run(
                otel,
                [
                    __file__,
                    "--child",
                    "sdk" if mode == "sdk" else "none",
                    f"--chain-n={chain_n}",
                    f"--chain-repeats={repeats}",
                ],
            )
            samples[mode].extend(report["samples"])
            exported += report["exported_spans"]
    return {"samples": samples, "exported_spans": exported}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base-python", help="interpreter without graflow-otel (required unless --child)")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds per comparison (default 6)")
    parser.add_argument("--chain-n", type=int, default=5000, help="tasks in the chain (default 5000)")
    parser.add_argument("--chain-repeats", type=int, default=3, help="chain samples per process (default 3)")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the samples here")
    parser.add_argument("--child", choices=["sdk", "none"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sdk_child(args.child, args.chain_n, args.chain_repeats)
        return 0
    if not args.base_python:
        parser.error("--base-python is required: an interpreter with graflow-core and without graflow-otel")
    otel = sys.executable
    if not _has_otel(otel) or _has_otel(args.base_python):
        parser.error("run this with graflow-otel installed, and give --base-python one without it")

    plain = installed_no_sdk(args.base_python, otel, args.rounds, args.chain_n, args.chain_repeats)
    sdk = with_sdk(otel, args.rounds, args.chain_n, args.chain_repeats)
    rows = [
        ("graflow-otel not installed", plain["without"]),
        ("installed, no SDK", plain["with"]),
        ("installed, no provider (SDK runs)", sdk["samples"]["no provider"]),
        ("SDK + BatchSpanProcessor", sdk["samples"]["sdk"]),
    ]
    expected_spans = args.rounds * args.chain_repeats * (args.chain_n + 1)
    lines = [
        f"chain of {args.chain_n} no-op tasks, {args.rounds} interleaved rounds x {args.chain_repeats} samples "
        "(us/task; the minimum is the least disturbed by other load on the machine)",
        f"  {'':36s}{'median':>9s}{'min':>9s}",
    ]
    lines += [f"  {label:36s}{median(v):9.2f}{min(v):9.2f}" for label, v in rows]
    for stat in (median, min):
        base, otel_idle = stat(plain["without"]), stat(plain["with"])
        idle, traced = stat(sdk["samples"]["no provider"]), stat(sdk["samples"]["sdk"])
        lines.append(
            f"  by {stat.__name__}: installed without SDK {100 * (otel_idle / base - 1):+.1f}% (goal <= +10%); "
            f"tracing costs {traced - idle:.1f} us per task"
        )
    lines.append(
        f"  spans the exporter received: {sdk['exported_spans']} of {expected_spans} "
        "(the batch queue drops spans it cannot hold)"
    )
    print("\n".join(lines))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps({"installed_no_sdk": plain, "sdk": sdk}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
