"""The worker fleets the overlays render run the command, settings and safeguards intended.

Each worker pod's command line is parsed by graflow-worker's own parser with the pod's
environment (tests/deploy/fleet.py), so a flag or a variable the worker does not know, a
bad value, or a probe the status command rejects fails here rather than in a cluster.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest
import yaml

from graflow.core.routing import DEFAULT_QUEUE
from graflow_worker.options import CONNECTION_OPTIONS, WORKER_OPTIONS, redis_url
from tests.deploy.conftest import OVERLAYS, Rendered
from tests.deploy.fleet import (
    EXTERNAL,
    environment,
    probe,
    served_queues,
    settings,
    worker_container,
)

DOCKERFILE = Path(__file__).resolve().parents[2] / "graflow-worker" / "deploy" / "Dockerfile"
KNOWN_ENV = {o.env for o in (*CONNECTION_OPTIONS, *WORKER_OPTIONS)}


def _all_workers(rendered: dict[str, Rendered]) -> list[tuple[Rendered, dict]]:
    return [(out, d) for out in rendered.values() for d in out.workers]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_runs_the_default_fleet_and_its_metrics_service(
    rendered: dict[str, Rendered], overlay: str
) -> None:
    out = rendered[overlay]
    assert "graflow-worker" in {d["metadata"]["name"] for d in out.workers}
    assert [
        s["metadata"]["name"] for s in out.of_kind("Service") if s["metadata"]["name"].startswith("graflow")
    ] == ["graflow-worker-metrics"]


def test_worker_commands_parse_with_graflow_workers_own_parser(rendered: dict[str, Rendered]) -> None:
    for out, deployment in _all_workers(rendered):
        container = worker_container(deployment)
        # The image's ENTRYPOINT is graflow-worker; an empty `args` would bring back its CMD,
        # whose flags would silently win over the ConfigMap's variables.
        assert "command" not in container
        assert container["args"], f"{out.overlay}: {deployment['metadata']['name']} must set args"
        settings(out, deployment)


def test_queue_flags_parse_with_graflow_workers_own_parser(rendered: dict[str, Rendered]) -> None:
    gpu = rendered["overlays/gpu"].named("Deployment", "graflow-worker-gpu")
    queues = settings(rendered["overlays/gpu"], gpu).queues
    assert (queues.split(",") if isinstance(queues, str) else list(queues)) == ["gpu"]


def test_every_variable_is_one_graflow_worker_reads(rendered: dict[str, Rendered]) -> None:
    for out, deployment in _all_workers(rendered):
        env = environment(out, worker_container(deployment))
        assert set(env) <= KNOWN_ENV, set(env) - KNOWN_ENV


def test_the_gpu_fleet_serves_the_gpu_queue_on_gpu_nodes(rendered: dict[str, Rendered]) -> None:
    for overlay in ("overlays/gpu", "overlays/keda"):
        out = rendered[overlay]
        gpu = out.named("Deployment", "graflow-worker-gpu")
        container = worker_container(gpu)
        assert container["args"][container["args"].index("--queues") :][:2] == ["--queues", "gpu"]
        assert served_queues(container, environment(out, container)) == ["gpu"]
        resources = container["resources"]
        gpus = int(resources["limits"]["nvidia.com/gpu"])
        assert gpus >= 1
        assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"]
        assert settings(out, gpu).max_concurrent_tasks == gpus  # one task per GPU
        pod = gpu["spec"]["template"]["spec"]
        assert pod["nodeSelector"]
        assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
        assert container["image"].startswith("graflow-worker-gpu:")


def test_the_default_fleet_serves_the_default_queue_without_gpus(rendered: dict[str, Rendered]) -> None:
    for out in rendered.values():
        default = out.named("Deployment", "graflow-worker")
        container = worker_container(default)
        assert served_queues(container, environment(out, container)) == [DEFAULT_QUEUE]
        assert "nvidia.com/gpu" not in container["resources"]["limits"]
        assert "nodeSelector" not in default["spec"]["template"]["spec"]


def test_fleets_select_disjoint_pods(rendered: dict[str, Rendered]) -> None:
    out = rendered["overlays/gpu"]
    selectors = [d["spec"]["selector"]["matchLabels"] for d in out.workers]
    for deployment in out.workers:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert sum(s.items() <= labels.items() for s in selectors) == 1


def test_the_secret_key_comes_from_a_secret_never_from_plain_yaml(rendered: dict[str, Rendered]) -> None:
    for out, deployment in _all_workers(rendered):
        (var,) = [v for v in worker_container(deployment)["env"] if v["name"] == "GRAFLOW_SECRET_KEY"]
        assert set(var) == {"name", "valueFrom"}
        ref = var["valueFrom"]["secretKeyRef"]
        assert ref["key"] == "secret-key"
        key = environment(out, worker_container(deployment))["GRAFLOW_SECRET_KEY"]
        if out.overlay == "base":
            assert (ref["name"], key) == ("graflow", EXTERNAL)
        else:
            assert ref["name"].startswith("graflow")
            assert key.strip() == out.secret_key  # what the operator's file holds, and nothing else


def test_no_manifest_in_the_repository_holds_a_secret_value() -> None:
    tree = DOCKERFILE.parent / "kubernetes"
    for path in tree.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if path.name != "kustomization.yaml":
                assert doc.get("kind") != "Secret", f"{path}: a Secret in plain YAML"
                continue
            for generator in doc.get("secretGenerator", []):
                assert set(generator) <= {"name", "files", "behavior", "type"}, f"{path}: {generator}"
                for source in generator.get("files", []):
                    # Only a file the operator creates, which git ignores.
                    ignored = (path.parent / ".gitignore").read_text().split()
                    assert source.rpartition("=")[2] in ignored, f"{path}: {source} is not ignored"


def test_the_metrics_service_scrapes_every_fleet_on_its_metrics_port(rendered: dict[str, Rendered]) -> None:
    for out in rendered.values():
        service = out.named("Service", "graflow-worker-metrics")
        (port,) = service["spec"]["ports"]
        selected = [
            d
            for d in out.of_kind("Deployment")
            if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert selected == out.workers  # every fleet, and no other pods (not Redis)
        for deployment in selected:
            metrics_port = settings(out, deployment).metrics_port
            container = worker_container(deployment)
            (named,) = [p for p in container["ports"] if p["name"] == port["targetPort"]]
            assert named["containerPort"] == metrics_port == port["port"]
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(metrics_port)


def test_pods_outlive_the_graceful_shutdown(rendered: dict[str, Rendered]) -> None:
    """Kubernetes SIGKILLs after terminationGracePeriodSeconds: running tasks must get their full
    --graceful-shutdown-timeout, and the worker a little more to hand back the rest and leave."""
    for out, deployment in _all_workers(rendered):
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= settings(out, deployment).graceful_shutdown_timeout + 10


def test_probes_run_status_self_on_the_health_file_the_worker_writes(rendered: dict[str, Rendered]) -> None:
    for out, deployment in _all_workers(rendered):
        worker = settings(out, deployment)
        assert worker.health_file, "status --self needs GRAFLOW_HEALTH_FILE"
        container = worker_container(deployment)
        mounts = [PurePosixPath(m["mountPath"]) for m in container["volumeMounts"]]
        # The root filesystem is read-only: the file must be on a mounted volume.
        assert any(PurePosixPath(worker.health_file).is_relative_to(m) for m in mounts)
        liveness = probe(out, deployment, "livenessProbe")
        readiness = probe(out, deployment, "readinessProbe")
        for check in (liveness, readiness):
            assert check.self_check
            assert check.health_file == worker.health_file
            assert check.max_age > worker.heartbeat_interval
        assert readiness.max_age <= liveness.max_age


def test_pods_run_as_the_images_unprivileged_user(rendered: dict[str, Rendered]) -> None:
    uid = int(re.search(r"useradd .*--uid (\d+)", DOCKERFILE.read_text()).group(1))  # type: ignore[union-attr]
    for _, deployment in _all_workers(rendered):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        context = worker_container(deployment)["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]


def test_every_container_has_requests_and_limits(rendered: dict[str, Rendered]) -> None:
    for out in rendered.values():
        for deployment in out.of_kind("Deployment"):
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                resources = container["resources"]
                assert {"cpu", "memory"} <= set(resources["requests"])
                assert "memory" in resources["limits"]


def test_replicas_are_fixed_without_keda_and_left_to_it_with(rendered: dict[str, Rendered]) -> None:
    assert rendered["base"].named("Deployment", "graflow-worker")["spec"]["replicas"] >= 1
    assert rendered["overlays/gpu"].named("Deployment", "graflow-worker-gpu")["spec"]["replicas"] >= 1
    # Under an autoscaler, a replicas field would reset its choice on every apply.
    for deployment in rendered["overlays/keda"].workers:
        assert "replicas" not in deployment["spec"]


def test_the_dev_overlay_runs_the_redis_the_workers_use(rendered: dict[str, Rendered]) -> None:
    out = rendered["overlays/dev"]
    service = out.named("Service", "redis")
    redis = out.named("Deployment", "redis")
    assert service["spec"]["selector"].items() <= redis["spec"]["template"]["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    for deployment in out.workers:
        assert (
            redis_url(settings(out, deployment)) == f"redis://{service['metadata']['name']}:{port['port']}/0"
        )
    assert redis["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


#: The ``workers`` section of the Helm values file in the product brief, which the base's
#: defaults follow (graflow-worker/README.md maps each value to its Kustomize field).
BRIEF_WORKERS = {
    "replicas": 3,
    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
}


def test_the_base_sizes_the_fleet_as_the_briefs_helm_values(rendered: dict[str, Rendered]) -> None:
    default = rendered["base"].named("Deployment", "graflow-worker")
    assert default["spec"]["replicas"] == BRIEF_WORKERS["replicas"]
    assert worker_container(default)["resources"] == BRIEF_WORKERS["resources"]
