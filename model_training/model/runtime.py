"""Training runtime: mixed-precision policy and the ``tf.distribute`` strategy.

Mixed precision: ``bfloat16`` compute on CPUs that have AMX-BF16 or AVX-512-BF16 (detected from
the ``flags`` line of ``/proc/cpuinfo``), ``float16`` on CUDA GPUs, float32 otherwise. Weights
stay float32 and the output layers are float32 in every policy (see ``unet.py``).

Strategies: ``default`` (one device), ``mirrored`` (all local GPUs, or all logical CPU devices),
``multiworker`` (``MultiWorkerMirroredStrategy``; the cluster comes from the ``TF_CONFIG``
environment variable, see docs/training.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from .config import TrainConfigError

log = logging.getLogger(__name__)

BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags listed in ``cpuinfo`` (empty when the file is unreadable)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def choose_precision(
    requested: str = "auto", has_gpu: bool | None = None, flags: set[str] | None = None
) -> str:
    """The compute dtype to train with: ``bfloat16``, ``float16`` or ``float32``."""
    if requested != "auto":
        return requested
    if has_gpu is None:
        has_gpu = _has_gpu()
    if has_gpu:
        return "float16"
    flags = cpu_flags() if flags is None else flags
    return "bfloat16" if any(f in flags for f in BF16_CPU_FLAGS) else "float32"


def set_precision(requested: str = "auto") -> str:
    """Set the global Keras dtype policy; returns the compute dtype chosen."""
    import keras

    dtype = choose_precision(requested)
    policy = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}.get(dtype, "float32")
    keras.mixed_precision.set_global_policy(policy)
    log.info("precision: %s (Keras policy %s)", dtype, policy)
    return dtype


def _has_gpu() -> bool:
    """Whether the Keras backend in use sees a GPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "torch":
        import torch

        return bool(torch.cuda.is_available())
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


class SingleDevice:
    """The one-device "strategy" of the JAX and PyTorch backends: an empty ``scope()``."""

    num_replicas_in_sync = 1

    def scope(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def make_strategy(name: str = "default") -> Any:
    """The ``tf.distribute`` strategy for ``name`` (build and compile the model in its scope).

    On Keras' JAX or PyTorch backend only ``default`` exists (one device, no ``tf.distribute``).
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        if name != "default":
            raise TrainConfigError(
                f"--strategy {name} needs the TensorFlow backend "
                f"(Keras runs on {keras.backend.backend()})"
            )
        return SingleDevice()
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        log.info("mirrored strategy over %d device(s): %s", len(devices), ", ".join(devices))
        return strategy
    if name == "multiworker":
        raw = os.environ.get("TF_CONFIG")
        if not raw:
            raise TrainConfigError(
                "--strategy multiworker needs the TF_CONFIG environment variable "
                "(cluster worker addresses and this worker's index); see docs/training.md"
            )
        try:
            tf_config = json.loads(raw)
            workers = tf_config["cluster"]["worker"]
            index = tf_config["task"]["index"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TrainConfigError("TF_CONFIG is not valid cluster JSON") from exc
        log.info("multi-worker strategy: worker %s of %d", index, len(workers))
        return _multi_worker_strategy()
    raise TrainConfigError(f"unknown strategy '{name}'")


def _multi_worker_strategy() -> Any:
    """``MultiWorkerMirroredStrategy`` with the two ``reduce`` calls of Keras 3's ``fit``
    that the collective strategy rejects made to work (keras-team/keras issues 20329 and
    20585, tensorflow/tensorflow issue 72388; Keras 3.15, TensorFlow 2.21):

    - before the first step, ``fit`` reduces the first distributed batch — a nest of
      per-replica values (our targets are a dict) — in one call; the collective strategy
      takes a single value only ("Attempt to convert a value (PerReplica ...) to a Tensor").
      Each leaf is reduced on its own, as the other strategies do.
    - after each step, it reduces every logged value with ``axis=0``, but the logs are
      scalars ("Invalid reduction dimension 0 for input with 0 dimensions"). A scalar is
      reduced across the replicas only (``axis=None``).
    """
    import tensorflow as tf

    def rank(value: Any) -> int | None:
        if isinstance(value, tf.distribute.DistributedValues):
            value = value.values[0]
        shape = getattr(value, "shape", None)
        return None if shape is None else shape.rank

    class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op: Any, value: Any, axis: Any = None) -> Any:
            parent_reduce = super().reduce

            def one(v: Any) -> Any:
                return parent_reduce(reduce_op, v, None if rank(v) == 0 else axis)

            if isinstance(value, (tuple, list, dict)):
                return tf.nest.map_structure(one, value)
            return one(value)

    return MultiWorkerStrategy()


def worker_index() -> int:
    """This process's index among the workers of ``TF_CONFIG`` (0 without a cluster)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        task = json.loads(raw).get("task", {})
        return int(task.get("index", 0)) if task.get("type", "worker") == "worker" else 0
    except (ValueError, TypeError, AttributeError):
        return 0


def is_chief() -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    try:
        task = json.loads(raw).get("task", {})
    except ValueError:
        return True
    return task.get("type", "worker") == "chief" or (
        task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0
    )
