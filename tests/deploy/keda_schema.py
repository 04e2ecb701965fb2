"""A JSON Schema for the part of KEDA's ScaledObject (keda.sh/v1alpha1) the overlays use.

kubernetes-validate knows the core API only, and KEDA's own CRD is not vendored here. This
schema is written from KEDA's documented ScaledObject specification, strictly: every object
lists the fields KEDA documents and rejects any other, and trigger metadata must be a map of
strings, as the CRD declares it (a bare number such as ``streamLength: 8`` is refused by the
API server). Sections the overlays do not use (``fallback``, HPA ``behavior``) are checked as
objects only; adding one to an overlay means describing it here first.
"""

from __future__ import annotations

from typing import Any, Final


def _strict(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    """An object with these fields only, ``required`` among them."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(required),
        "properties": properties,
    }


_STRING: Final = {"type": "string"}
_STRING_MAP: Final = {"type": "object", "additionalProperties": _STRING}
_COUNT: Final = {"type": "integer", "minimum": 0}
_OBJECT: Final = {"type": "object"}

_TRIGGER: Final = _strict(
    {
        "type": _STRING,
        "name": _STRING,
        "metadata": _STRING_MAP,
        "useCachedMetrics": {"type": "boolean"},
        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
        "authenticationRef": _strict({"name": _STRING, "kind": _STRING}, "name"),
    },
    "type",
    "metadata",
)

_SCALING_MODIFIERS: Final = _strict(
    {
        "formula": {"type": "string", "minLength": 1},
        "target": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
        "activationTarget": _STRING,
        "metricType": {"enum": ["AverageValue", "Value"]},
    },
    "formula",
    "target",
)

_SPEC: Final = _strict(
    {
        "scaleTargetRef": _strict(
            {"name": _STRING, "apiVersion": _STRING, "kind": _STRING, "envSourceContainerName": _STRING},
            "name",
        ),
        "pollingInterval": _COUNT,
        "cooldownPeriod": _COUNT,
        "initialCooldownPeriod": _COUNT,
        "idleReplicaCount": _COUNT,
        "minReplicaCount": _COUNT,
        "maxReplicaCount": {"type": "integer", "minimum": 1},
        "fallback": _OBJECT,
        "advanced": _strict(
            {
                "restoreToOriginalReplicaCount": {"type": "boolean"},
                "horizontalPodAutoscalerConfig": _OBJECT,
                "scalingModifiers": _SCALING_MODIFIERS,
            }
        ),
        "triggers": {"type": "array", "minItems": 1, "items": _TRIGGER},
    },
    "scaleTargetRef",
    "triggers",
)

SCALED_OBJECT: Final[dict[str, Any]] = _strict(
    {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": _strict(
            {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": _STRING,
                "labels": _STRING_MAP,
                "annotations": _STRING_MAP,
            },
            "name",
        ),
        "spec": _SPEC,
    },
    "apiVersion",
    "kind",
    "metadata",
    "spec",
)

#: The metadata the ``redis-streams`` scaler reads (KEDA's scaler documentation).
REDIS_STREAMS_PARAMETERS: Final = frozenset(
    {
        "address",
        "addressFromEnv",
        "host",
        "hostFromEnv",
        "port",
        "portFromEnv",
        "usernameFromEnv",
        "passwordFromEnv",
        "stream",
        "consumerGroup",
        "pendingEntriesCount",
        "streamLength",
        "lagCount",
        "activationLagCount",
        "enableTLS",
        "unsafeSsl",
        "databaseIndex",
    }
)
