"""``--strategy mirrored`` trains across two logical CPU devices.

Logical devices can only be configured before TensorFlow initialises its runtime, so the check
runs in a fresh interpreter and does not disturb the other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    from model_training.model import ModelConfig, TrainConfig
    from model_training.model.fit import FitData, fit
    from model_training.model.runtime import make_strategy

    strategy = make_strategy("mirrored")
    rng = np.random.default_rng(0)
    n, s = 8, 32
    x = rng.random((n, s, s, 4), dtype=np.float32)
    y = {
        "vertebrae": rng.integers(0, 8, (n, s, s)).astype(np.int32),
        "fracture_map": (rng.random((n, s, s, 1)) > 0.9).astype(np.float32),
        "fracture_cls": (rng.random((n, 7)) > 0.8).astype(np.float32),
    }
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    cfg = TrainConfig(out_dir=sys.argv[1], model=ModelConfig(input_size=s), epochs=1,
                      precision="float32", early_stopping_patience=0)
    model = fit(cfg, FitData(ds, None, 2, None), strategy)
    w = model.get_layer("decoder_stage1a_conv").weights[0]
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "var_type": type(w).__name__ if not hasattr(w, "value") else type(w.value).__name__,
        "history": open(sys.argv[1] + "/history.csv").read(),
    }))
    """
)


@pytest.mark.slow  # ~2 min on 2 cores: DenseNet121 traced once per replica
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(run)],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert "Mirrored" in out["var_type"]
    header, row = out["history"].strip().splitlines()[:2]
    loss = float(row.split(",")[header.split(",").index("loss")])
    assert loss == loss and loss > 0  # finite, positive
    assert (run / "checkpoints" / "last.keras").is_file()
