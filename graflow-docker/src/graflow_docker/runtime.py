"""How graflow's own code gets into an image that has nothing but Python.

Nothing is installed in the container. The host's copies of graflow and of its
pure-Python dependencies (cloudpickle, pluggy, structlog, ...) are bind-mounted
read-only under :data:`RUNTIME_DIR`, which the bootstrap script puts first on
``sys.path``; so any image with a compatible ``python3`` runs a task, with no
``pip install`` per run and nothing left behind. The image's own packages stay
visible after them, so the task imports the image's ``numpy`` or ``tensorflow``.

No entry-point metadata is mounted: inside the container graflow loads no plugins,
only its built-ins.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final

__all__ = [
    "IO_DIR",
    "ONE_SHOT_SCRIPT",
    "RUNTIME_DIR",
    "VERSION_SCRIPT",
    "WARM_SCRIPT",
    "WARM_SOCKETS",
    "RuntimeMount",
    "runtime_mounts",
]

#: Where graflow's runtime is mounted in the container.
RUNTIME_DIR: Final = "/opt/graflow/runtime"
#: Where the per-task exchange directory (envelope, outcome, sockets) is mounted.
IO_DIR: Final = "/graflow-io"
#: The distribution whose requirement closure makes up the runtime.
_ROOT_DISTRIBUTION: Final = "graflow-core"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"\bextra\s*==")

#: Prints the interpreter's version; run once per handler and image.
VERSION_SCRIPT: Final = "import sys; print('%d.%d.%d' % sys.version_info[:3])"

#: The Unix sockets a warm container connects to, in its exchange directory: envelopes in
#: and outcomes out on the first, the task's stdout and stderr on the others.
WARM_SOCKETS: Final = ("control", "stdout", "stderr")

#: What both scripts share: ``run(payload, task_id, form)`` runs one envelope and returns
#: its outcome as ``form`` says: ``"pickle"`` (a trusted container: any picklable result)
#: or ``"json"`` (``sandbox=True``: plain data, see :mod:`graflow.remote.plain`). Unlike
#: ``python -m graflow.remote.runner`` it also turns an envelope that cannot be *loaded*
#: here (a module missing from the image) into a task failure.
_RUN: Final = f"""
import sys, time
sys.path.insert(0, {RUNTIME_DIR!r})
from graflow.remote.codec import dumps_outcome, loads
from graflow.remote.envelope import failure
from graflow.remote.plain import dumps_plain_outcome
from graflow.remote.runner import run_envelope
def run(payload, task_id, form):
    try:
        outcome = run_envelope(loads(payload))
    except BaseException as exc:
        outcome = failure(task_id, exc, time.time())
    return (dumps_plain_outcome if form == "json" else dumps_outcome)(outcome)
"""

#: ``python -c ONE_SHOT_SCRIPT ENVELOPE OUTCOME TASK_ID FORM``: run one envelope from the
#: exchange directory and write its outcome there. Stdout and stderr are the task's alone.
ONE_SHOT_SCRIPT: Final = (
    _RUN
    + """
source, target, task_id, form = sys.argv[1:5]
with open(source, "rb") as f:
    payload = f.read()
result = run(payload, task_id, form)
with open(target, "wb") as f:
    f.write(result)
"""
)

#: ``python -c WARM_SCRIPT DIRECTORY FORM``: the loop of a warm container (``reuse=True``).
#: It connects to the :data:`WARM_SOCKETS` and makes the output sockets its file
#: descriptors 1 and 2, so everything the tasks print (C code and subprocesses too)
#: reaches the host apart from the loop's own frames. On the control socket: ``!II``
#: header and payload lengths, a JSON header (``task_id``, ``traceparent``) and the
#: envelope in; ``!Q`` and the outcome out, sent once the task's output is flushed.
#: The loop ends when the host closes the socket (or its process dies).
WARM_SCRIPT: Final = (
    _RUN
    + f"""
import json, os, socket, struct
directory, form = sys.argv[1:3]
def connect(name):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.path.join(directory, name))
    return sock
control, out, err = (connect(name) for name in {WARM_SOCKETS!r})
for fd, sock in ((1, out), (2, err)):
    os.dup2(sock.fileno(), fd)
    sock.close()
def read(n):
    chunks = []
    while n:
        chunk = control.recv(min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)
while True:
    head = read(8)
    if head is None:
        break
    header_len, payload_len = struct.unpack("!II", head)
    header = json.loads(read(header_len))
    payload = read(payload_len)
    if header.get("traceparent"):
        os.environ["TRACEPARENT"] = header["traceparent"]
    else:
        os.environ.pop("TRACEPARENT", None)
    result = run(payload, header["task_id"], form)
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    control.sendall(struct.pack("!Q", len(result)) + result)
"""
)


@dataclass(frozen=True)
class RuntimeMount:
    """One host package (directory or single-module file) and where it appears in the container."""

    source: Path
    target: str

    def bind(self) -> str:
        """The ``volumes`` entry (``host:container:ro``)."""
        return f"{self.source}:{self.target}:ro"


def runtime_mounts() -> list[RuntimeMount]:
    """The read-only mounts that make ``import graflow`` work in a bare Python image.

    Every distribution in graflow-core's requirement closure is included, whatever its
    environment markers say: they were evaluated for this interpreter, and the image's
    may differ (``typing-extensions; python_version < '3.11'``). Extras are not followed.
    """
    mounts: dict[str, RuntimeMount] = {}
    for name in _top_level_modules(_requirement_closure(_ROOT_DISTRIBUTION)) | {"graflow"}:
        source = _module_source(name)
        if source is not None:
            mounts[name] = RuntimeMount(source, f"{RUNTIME_DIR}/{source.name}")
    return sorted(mounts.values(), key=lambda m: m.target)


def _requirement_closure(root: str) -> list[metadata.Distribution]:
    seen: dict[str, metadata.Distribution] = {}
    pending = [root]
    while pending:
        name = _normalize(pending.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement for another Python or platform that is not installed here
        seen[name] = dist
        for requirement in dist.requires or ():
            if _EXTRA.search(requirement):
                continue
            match = _NAME.match(requirement)
            if match:
                pending.append(match.group(1))
    return list(seen.values())


def _top_level_modules(dists: list[metadata.Distribution]) -> set[str]:
    names: set[str] = set()
    for dist in dists:
        listed = dist.read_text("top_level.txt")
        if listed:
            names.update(line.strip() for line in listed.splitlines() if line.strip())
            continue
        for file in dist.files or ():
            parts = Path(str(file)).parts
            if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".pth")):
                continue
            if len(parts) > 1:
                names.add(parts[0])
            elif parts[0].endswith(".py"):
                names.add(parts[0][:-3])
    return {n for n in names if n.isidentifier()}


def _module_source(name: str) -> Path | None:
    """The package directory or module file ``import name`` would load, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        locations = list(spec.submodule_search_locations)
        return Path(locations[0]) if locations else None
    if spec.origin and spec.origin.endswith(".py"):
        return Path(spec.origin)
    return None


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
