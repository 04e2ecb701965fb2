"""Render every Kustomize overlay of graflow-worker/deploy/kubernetes once per session.

The tree is copied to a temporary directory with a freshly generated ``secret-key`` file
(overlays/secret reads it; the repository never holds one), then each overlay is rendered
with ``kubectl kustomize``. No cluster is involved. kubectl is ``$GRAFLOW_KUBECTL`` or the
one on PATH (``.ci/kubectl.sh`` installs Debian's); without one the tests skip, and under
``CI=true`` fail.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.services import missing

KUBERNETES = Path(__file__).resolve().parents[2] / "graflow-worker" / "deploy" / "kubernetes"

#: Every kustomization of the tree, by its path below deploy/kubernetes: a new overlay is
#: added here (and to graflow-worker/README.md) so that it is rendered and checked too.
OVERLAYS = ("base", "overlays/secret", "overlays/gpu", "overlays/keda", "overlays/dev")


@dataclass
class Rendered:
    """The objects ``kubectl kustomize`` printed for one overlay."""

    overlay: str
    docs: list[dict[str, Any]]
    stderr: str = ""
    #: The secret key written into the copied tree (what the Secret must hold).
    secret_key: str = field(default="", repr=False)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        (found,) = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        return found

    @property
    def workers(self) -> list[dict[str, Any]]:
        """The Deployments whose pods run graflow-worker."""
        return [d for d in self.of_kind("Deployment") if _runs_worker(d)]


def _runs_worker(deployment: dict[str, Any]) -> bool:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    # registry.example.com:5000/graflow-worker-gpu:1.0 -> graflow-worker-gpu
    return any(c["image"].rsplit("/", 1)[-1].split(":")[0].startswith("graflow-worker") for c in containers)


def find_kubectl() -> str:
    """The kubectl to render with; :func:`missing` when there is none."""
    kubectl = os.environ.get("GRAFLOW_KUBECTL") or shutil.which("kubectl")
    if not kubectl:
        missing("no kubectl on PATH: `bash .ci/kubectl.sh` installs Debian's kubernetes-client")
    return kubectl


def kustomize(kubectl: str, directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="session")
def kubectl() -> str:
    return find_kubectl()


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of deploy/kubernetes with a new secret key in overlays/secret, and that key."""
    copy = tmp_path_factory.mktemp("deploy") / "kubernetes"
    shutil.copytree(KUBERNETES, copy, ignore=shutil.ignore_patterns("secret-key"))
    key = secrets.token_hex(32)
    (copy / "overlays" / "secret" / "secret-key").write_text(key + "\n")
    return copy, key


@pytest.fixture(scope="session")
def rendered(kubectl: str, tree: tuple[Path, str]) -> dict[str, Rendered]:
    """Every overlay of :data:`OVERLAYS`, rendered."""
    root, key = tree
    out: dict[str, Rendered] = {}
    for overlay in OVERLAYS:
        done = kustomize(kubectl, root / overlay)
        assert done.returncode == 0, f"kubectl kustomize {overlay} failed:\n{done.stderr}"
        docs = [d for d in yaml.safe_load_all(done.stdout) if d]
        out[overlay] = Rendered(overlay, docs, done.stderr, key)
    return out
