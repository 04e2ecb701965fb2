"""Every overlay renders, and what it renders is valid Kubernetes.

Core objects are validated by kubernetes-validate against the schemas of pinned Kubernetes
versions, strictly (an unknown or misspelt field fails). KEDA's ScaledObjects are not in
those schemas: they are validated against :mod:`tests.deploy.keda_schema`, and skipped by
no one. Every object an overlay's pods refer to (ConfigMap, Secret) must be in the same
rendering, except the Secret the base leaves to the operator.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from graflow_worker.options import redis_url
from tests.deploy.conftest import KUBERNETES, OVERLAYS, Rendered, kustomize
from tests.deploy.fleet import environment, settings, trigger_server, worker_container
from tests.deploy.keda_schema import SCALED_OBJECT

#: The Kubernetes versions the manifests are validated against: the oldest one they claim
#: to support and the newest one the pinned kubernetes-validate (tox.ini) knows.
KUBERNETES_VERSIONS = ("1.29", "1.37")

#: The kustomization fields Debian's kubectl 1.20 (kustomize v2.0.3) understands and current
#: kubectl still renders the same way. `resources` naming a directory, `patches`,
#: `components`, `labels` and `replacements` came later: .ci/kubectl.sh may install 1.20.
KUSTOMIZE_V2_FIELDS = frozenset(
    {
        "resources",
        "bases",
        "patchesStrategicMerge",
        "patchesJson6902",
        "configMapGenerator",
        "secretGenerator",
        "generatorOptions",
        "images",
        "namePrefix",
        "nameSuffix",
        "namespace",
        "commonAnnotations",
    }
)


def test_every_kustomization_of_the_tree_is_rendered_by_these_tests() -> None:
    found = sorted(str(p.parent.relative_to(KUBERNETES)) for p in KUBERNETES.rglob("kustomization.yaml"))
    assert found == sorted(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomizations_use_only_fields_kustomize_v2_renders(overlay: str) -> None:
    spec = yaml.safe_load((KUBERNETES / overlay / "kustomization.yaml").read_text())
    assert set(spec) <= KUSTOMIZE_V2_FIELDS, set(spec) - KUSTOMIZE_V2_FIELDS
    for entry in spec.get("resources", []):
        assert (KUBERNETES / overlay / entry).is_file(), (
            f"{overlay}: {entry} must be a file (dirs go in bases)"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_objects_validate_strictly(rendered: dict[str, Rendered], overlay: str, version: str) -> None:
    core = [d for d in rendered[overlay].docs if not d["apiVersion"].startswith("keda.sh/")]
    assert core
    for doc in core:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"{overlay}: {doc['kind']}/{doc['metadata']['name']} at {path}: {error.message}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_objects_validate_against_the_scaled_object_schema(
    rendered: dict[str, Rendered], overlay: str
) -> None:
    for doc in rendered[overlay].docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            assert doc["kind"] == "ScaledObject", f"no schema here for keda.sh {doc['kind']}"
            jsonschema.validate(doc, SCALED_OBJECT)


def test_the_scaled_object_schema_refuses_what_the_crd_refuses(rendered: dict[str, Rendered]) -> None:
    (good, *_) = rendered["overlays/keda"].of_kind("ScaledObject")
    jsonschema.validate(good, SCALED_OBJECT)
    bad_value = yaml.safe_load(yaml.safe_dump(good))
    bad_value["spec"]["triggers"][0]["metadata"]["streamLength"] = 8  # a number, not a string
    bad_field = yaml.safe_load(yaml.safe_dump(good))
    bad_field["spec"]["minReplicas"] = 1  # HPA's spelling, not KEDA's
    for bad in (bad_value, bad_field):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCALED_OBJECT)


def _references(pod: dict[str, Any]) -> set[tuple[str, str]]:
    """``(kind, name)`` of every ConfigMap and Secret the pod's containers read."""
    refs: set[tuple[str, str]] = set()
    for container in pod["containers"]:
        for source in container.get("envFrom", []):
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in source:
                    refs.add((kind, source[key]["name"]))
        for var in container.get("env", []):
            value_from = var.get("valueFrom", {})
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if key in value_from:
                    refs.add((kind, value_from[key]["name"]))
    return refs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_what_pods_read_is_in_the_same_rendering(rendered: dict[str, Rendered], overlay: str) -> None:
    out = rendered[overlay]
    present = {(d["kind"], d["metadata"]["name"]) for d in out.docs}
    for deployment in out.of_kind("Deployment"):
        dangling = _references(deployment["spec"]["template"]["spec"]) - present
        if overlay == "base":
            # The base leaves the Secret to the operator (overlays/secret, or their own).
            assert dangling <= {("Secret", "graflow")}
        else:
            assert dangling == set(), f"{deployment['metadata']['name']} reads objects not rendered"


def test_rendering_fails_without_a_secret_key_file(kubectl: str, tmp_path: Path) -> None:
    """No placeholder key: without the operator's file there is no Secret and no fleet."""
    copy = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copy, ignore=shutil.ignore_patterns("secret-key"))
    done = kustomize(kubectl, copy / "overlays" / "secret")
    assert done.returncode != 0
    assert "secret-key" in done.stderr


README = KUBERNETES.parents[1] / "README.md"
#: The patch the README's example names (fleet.yaml), as a reader would write it.
FLEET_PATCH = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: graflow-worker
spec:
  template:
    spec:
      containers:
        - name: worker
          resources:
            requests: {cpu: "3"}
"""


def test_the_readmes_own_overlay_renders_as_it_says(
    kubectl: str, tree: tuple[Path, str], tmp_path: Path
) -> None:
    """graflow-worker/README.md, "Your own overlay": namespace, image, Redis and a patch."""
    root, key = tree
    example = README.read_text().split("**Your own overlay.**", 1)[1].split("```yaml\n", 1)[1].split("```")[0]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "kustomization.yaml").write_text(
        example.replace("path/to/graflow-worker/deploy/kubernetes", os.path.relpath(root, mine))
    )
    (mine / "fleet.yaml").write_text(FLEET_PATCH)
    done = kustomize(kubectl, mine)
    assert done.returncode == 0, done.stderr
    out = Rendered("README", [d for d in yaml.safe_load_all(done.stdout) if d], done.stderr, key)
    assert {d["metadata"].get("namespace") for d in out.docs} == {"graflow"}
    default = out.named("Deployment", "graflow-worker")
    assert worker_container(default)["image"] == "registry.example.com/graflow-worker:0.3.0"
    assert worker_container(default)["resources"]["requests"]["cpu"] == "3"
    assert worker_container(out.named("Deployment", "graflow-worker-gpu"))["image"].startswith(
        "graflow-worker-gpu:"
    )
    assert len(out.workers) == 2
    for deployment in out.workers:
        assert redis_url(settings(out, deployment)) == "redis://redis.internal:6379/0"
        env = environment(out, worker_container(deployment))
        for scaled in out.of_kind("ScaledObject"):
            for trigger in scaled["spec"]["triggers"]:
                assert trigger_server(trigger["metadata"], env) == ("redis.internal", 6379)
    for doc in out.docs:
        if not doc["apiVersion"].startswith("keda.sh/"):
            kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)
