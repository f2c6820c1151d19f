"""Kinds by what they are to the layers: outside any namespace, running pods, never running
any. Reports, renders and rules sort objects by these lists, so there is one of each."""

from __future__ import annotations

# Kinds that live outside any namespace; everything else defaults to `default`.
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
        "PriorityClass",
        "RuntimeClass",
        "IngressClass",
        "GatewayClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "CSIDriver",
        "APIService",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
)
# The built-in kinds that run pods (the audit's inventory and reports use this list).
WORKLOAD_KINDS = frozenset(
    {
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
    }
)
# The API groups of those kinds.
WORKLOAD_GROUPS = frozenset({"core", "apps", "batch"})
# Pods that run to completion: probes make no sense for them.
BATCH_KINDS = frozenset({"Job", "CronJob"})
CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")
# Kinds that never carry a pod, skipped without reading their bodies (fast, and under
# preview an unknown ConfigMap value then stops no pod rule).
PODLESS_KINDS = frozenset(
    {
        "ConfigMap",
        "Secret",
        "Namespace",
        "Service",
        "Endpoints",
        "EndpointSlice",
        "NetworkPolicy",
        "ServiceAccount",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "ResourceQuota",
        "LimitRange",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "CustomResourceDefinition",
        "StorageClass",
        "PriorityClass",
        "Ingress",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
)
BUILTIN_GROUPS = frozenset(
    {
        "core",
        "rbac.authorization.k8s.io",
        "networking.k8s.io",
        "discovery.k8s.io",
        "apiextensions.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "policy",
        "autoscaling",
    }
)
