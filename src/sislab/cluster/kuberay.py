"""KubeRay manifests for sislab: a RayCluster (long-lived, `sislab submit` to it) or a RayJob (one
sweep, cluster created and deleted with it), commented for the fields a lab changes.

Credentials appear only as ``valueFrom.secretKeyRef`` references to a Kubernetes Secret that the lab
creates itself; the manifest never holds a key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

# The Ray version the project pins; image tags and rayVersion must match the cluster's Ray.
RAY_VERSION = "2.60.0"


@dataclass(frozen=True)
class ClusterOptions:
    """What a lab changes in a generated manifest (every field has a working default).

    Attributes:
        name: Kubernetes name of the RayCluster/RayJob (DNS label).
        image: Container image with Ray, torch and sislab installed (the same on head and workers).
        head_cpus: CPU request/limit of the head pod (drivers, Tune, the Jobs API; no training).
        head_memory: Memory of the head pod (Kubernetes quantity).
        worker_gpus: GPUs per worker pod (= Ray Train workers per pod with gpus_per_worker 1).
        worker_cpus: CPUs per worker pod (data decoding runs here).
        worker_memory: Memory per worker pod.
        min_replicas: Worker pods kept when idle (0: scale to zero).
        max_replicas: Most worker pods the autoscaler may start.
        accelerator: GPU product for the nodeSelector (e.g. NVIDIA-A100-SXM4-80GB), or None.
        mlflow_uri: Shared MLflow server; the spec's ``tracking.uri`` must name the same server.
        s3_endpoint: S3-compatible endpoint (MinIO, Ceph), or None for AWS S3.
        s3_secret: Kubernetes Secret holding AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
        spec_configmap: ConfigMap holding ``spec.yaml`` for a RayJob.
    """

    name: str = "sislab"
    image: str = f"rayproject/ray:{RAY_VERSION}-py311-gpu"
    head_cpus: int = 4
    head_memory: str = "16Gi"
    worker_gpus: int = 1
    worker_cpus: int = 8
    worker_memory: str = "48Gi"
    min_replicas: int = 0
    max_replicas: int = 4
    accelerator: str | None = None
    mlflow_uri: str = "http://mlflow.lab.svc:5000"
    s3_endpoint: str | None = None
    s3_secret: str = "sislab-s3"
    spec_configmap: str = "sislab-spec"


def _q(value: str) -> str:
    """A YAML scalar for ``value`` (JSON strings are YAML)."""
    return json.dumps(value)


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.splitlines())


def _env(opts: ClusterOptions) -> str:
    endpoint = ""
    if opts.s3_endpoint:
        endpoint = f"""\
# S3-compatible endpoint for pyarrow (datasets, Ray storage) and MLflow's S3 client.
- name: AWS_ENDPOINT_URL
  value: {_q(opts.s3_endpoint)}
- name: MLFLOW_S3_ENDPOINT_URL
  value: {_q(opts.s3_endpoint)}
"""
    return f"""\
env:
# Shared MLflow server; set the spec's tracking.uri to the same URI.
- name: MLFLOW_TRACKING_URI
  value: {_q(opts.mlflow_uri)}
{endpoint}# S3 credentials by reference only: kubectl create secret generic {opts.s3_secret} \\
#   --from-literal=AWS_ACCESS_KEY_ID=... --from-literal=AWS_SECRET_ACCESS_KEY=...
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {{name: {_q(opts.s3_secret)}, key: AWS_ACCESS_KEY_ID}}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {{name: {_q(opts.s3_secret)}, key: AWS_SECRET_ACCESS_KEY}}
"""


def _head(opts: ClusterOptions, with_spec: bool) -> str:
    mounts, volumes = "", ""
    if with_spec:
        mounts = "\n    volumeMounts:\n    - {name: spec, mountPath: /sislab}"
        volumes = (
            f"\n  volumes:\n  - name: spec\n    configMap: {{name: {_q(opts.spec_configmap)}}}"
        )
    resources = f'{{cpu: "{opts.head_cpus}", memory: {_q(opts.head_memory)}}}'
    return f"""\
headGroupSpec:
  # num-cpus 0: no training or data tasks on the head, only drivers and the Jobs API.
  rayStartParams:
    num-cpus: "0"
    dashboard-host: "0.0.0.0"
  template:
    spec:
      containers:
      - name: ray-head
        image: {_q(opts.image)}
        ports:
        - {{containerPort: 6379, name: gcs}}
        - {{containerPort: 8265, name: dashboard}}   # Jobs API: sislab submit --address
        - {{containerPort: 10001, name: client}}
        resources:
          requests: {resources}
          limits: {resources}
{_indent(_env(opts), 8)}{_indent(mounts, 4)}{_indent(volumes, 4)}
"""


def _workers(opts: ClusterOptions) -> str:
    selector = (
        f"\n      nodeSelector:\n        nvidia.com/gpu.product: {_q(opts.accelerator)}"
        if opts.accelerator
        else "\n      # nodeSelector: {nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB}"
    )
    resources = (
        f'{{cpu: "{opts.worker_cpus}", memory: {_q(opts.worker_memory)}, '
        f'nvidia.com/gpu: "{opts.worker_gpus}"}}'
    )
    return f"""\
workerGroupSpecs:
- groupName: gpu
  # Autoscaling bounds; resources.num_workers x max_concurrent_trials GPUs must fit in
  # max_replicas x worker_gpus.
  replicas: {opts.min_replicas}
  minReplicas: {opts.min_replicas}
  maxReplicas: {opts.max_replicas}
  rayStartParams: {{}}
  template:
    spec:{selector}
      tolerations:
      - {{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}}
      containers:
      - name: ray-worker
        image: {_q(opts.image)}
        resources:
          requests: {resources}
          limits: {resources}
{_indent(_env(opts), 8)}
"""


def _cluster_spec(opts: ClusterOptions, with_spec: bool) -> str:
    return f"""\
rayVersion: {_q(RAY_VERSION)}
# Ray token authentication: KubeRay creates the token Secret and gives it to every pod; clients
# (sislab submit) need it as RAY_AUTH_TOKEN (docs/cluster.md).
authOptions:
  mode: token
# The autoscaler adds worker pods when trials wait for GPUs and removes idle ones.
enableInTreeAutoscaling: true
autoscalerOptions:
  idleTimeoutSeconds: 300
{_head(opts, with_spec)}{_workers(opts)}"""


def kuberay_manifest(opts: ClusterOptions, kind: Literal["RayCluster", "RayJob"]) -> str:
    """A commented KubeRay manifest (one YAML document).

    Args:
        opts: What the lab sets.
        kind: ``RayCluster`` (long-lived; ``sislab submit --address http://HEAD:8265``) or
            ``RayJob`` (one sweep; the spec comes from the ConfigMap ``opts.spec_configmap``).
    """
    header = f"""\
# sislab on KubeRay ({kind}), generated by `sislab cluster init --kind kuberay`.
# Check it offline: sislab cluster validate FILE. Apply: kubectl apply -f FILE.
# Every field a lab changes is explained in docs/cluster.md.
apiVersion: ray.io/v1
kind: {kind}
metadata:
  name: {_q(opts.name)}
spec:
"""
    if kind == "RayCluster":
        return header + _indent(_cluster_spec(opts, with_spec=False), 2) + "\n"
    job = f"""\
# The spec comes from a ConfigMap: kubectl create configmap {opts.spec_configmap} --from-file=spec.yaml
entrypoint: "python -m sislab.cli.main run /sislab/spec.yaml --address auto"
# Delete the cluster when the sweep ends (results are in MLflow and S3).
shutdownAfterJobFinishes: true
ttlSecondsAfterFinished: 600
rayClusterSpec:
{_indent(_cluster_spec(opts, with_spec=True), 2)}
"""
    return header + _indent(job, 2) + "\n"
