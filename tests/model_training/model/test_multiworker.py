"""``--strategy multiworker`` for real: two worker processes on 127.0.0.1, joined through
``TF_CONFIG``, train one tiny epoch together with ``MultiWorkerMirroredStrategy``.

Each worker is a fresh interpreter (a strategy must be made before TensorFlow initialises its
runtime). Both must see two replicas in sync and end with the same weights; only the chief
writes the run's logs and checkpoints, the other worker keeps its backup apart.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 300  # both workers together; a worker left waiting for its peer never ends alone

WORKER = textwrap.dedent(
    """
    import hashlib, json, sys
    sys.path.insert(0, sys.argv[2])
    from model_training.model.runtime import make_strategy

    strategy = make_strategy("multiworker")  # before any other TensorFlow op
    import numpy as np
    import tensorflow as tf
    from tiny_unet import SIZE, batch, tiny_unet
    from model_training.model import ModelConfig, TrainConfig
    from model_training.model.fit import FitData, fit_run

    def dataset(seed):  # global batch 8, split between the workers
        return tf.data.Dataset.from_tensor_slices(batch(n=8, seed=seed)).repeat().batch(8)

    cfg = TrainConfig(data_dir="unused", out_dir=sys.argv[1], model=ModelConfig(input_size=32),
                      epochs=1, batch_size=8, optimizer="sgd", learning_rate=0.05,
                      early_stopping_patience=0, bn_calibration_steps=0, precision="float32",
                      strategy="multiworker")
    object.__setattr__(cfg.model, "input_size", SIZE)
    out = fit_run(cfg, FitData(dataset(0), dataset(1), 3, 1), strategy, model_factory=tiny_unet)
    digest = hashlib.sha256()
    for w in out.model.get_weights():
        digest.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    print("RESULT " + json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "mwms": isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy),
        "iterations": int(out.model.optimizer.iterations.numpy()),
        "weights": digest.hexdigest(),
        "finished": out.finished,
    }), flush=True)
    """
)


def _free_ports(n: int) -> list[int]:
    """n distinct ports free on 127.0.0.1 right now (held open together, then released)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _kill(proc: subprocess.Popen) -> None:
    """End a worker and whatever it started (its own process group)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _run_cluster(run: Path, logs: Path) -> list[tuple[int, str]]:
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs: list[subprocess.Popen] = []
    files = []
    try:
        for index in range(2):
            tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            env = {
                **os.environ,
                "TF_CONFIG": json.dumps(tf_config),
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "CUDA_VISIBLE_DEVICES": "",
                "KERAS_BACKEND": "tensorflow",
            }
            out = (logs / f"worker{index}.log").open("w")
            files.append(out)
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", WORKER, str(run), str(HERE)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # its own process group, killed as one
                )
            )
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            codes = [p.poll() for p in procs]
            if all(c is not None for c in codes):
                break
            if any(c not in (None, 0) for c in codes):
                break  # one worker failed: the other would wait for it forever
            time.sleep(0.5)
    finally:
        for p in procs:
            _kill(p)
        for f in files:
            f.close()
    return [(p.returncode, (logs / f"worker{i}.log").read_text()) for i, p in enumerate(procs)]


@pytest.mark.slow  # two interpreters start TensorFlow and trace the step: ~40 s on 2 cores
def test_two_workers_train_one_epoch_together(tmp_path):
    run, logs = tmp_path / "run", tmp_path / "logs"
    logs.mkdir()
    results = _run_cluster(run, logs)
    for index, (code, text) in enumerate(results):
        assert code == 0, f"worker {index} exited {code}:\n{text[-4000:]}"
    out = [
        json.loads(next(ln for ln in text.splitlines() if ln.startswith("RESULT "))[7:])
        for _, text in results
    ]
    assert [o["replicas"] for o in out] == [2, 2]
    assert all(o["mwms"] for o in out)
    assert [o["iterations"] for o in out] == [3, 3] and all(o["finished"] for o in out)
    assert out[0]["weights"] == out[1]["weights"]  # synchronous: one model on two workers
    header, *rows = (run / "history.csv").read_text().strip().splitlines()
    row = dict(zip(header.split(","), rows[0].split(","), strict=True))
    assert len(rows) == 1 and float(row["loss"]) > 0 and float(row["val_fracture_cls_auc"]) >= 0
    assert (run / "checkpoints" / "best.keras").is_file()
    assert (run / "workers" / "worker1" / "checkpoints" / "last.keras").is_file()
    assert not (run / "workers" / "worker1" / "history.csv").exists()  # the chief logs
    assert (run / "backup" / "finetune" / "latest.weights.h5").is_file()
    assert (run / "workers" / "worker1" / "backup" / "finetune" / "latest.weights.h5").is_file()
