"""TrainConfig YAML round trip, plain errors, precision detection and the CLI's config merge."""

from __future__ import annotations

import pytest

from cspine_desktop.errors import CspineInputError
from model_training.model.config import ModelConfig, TrainConfig, TrainConfigError
from model_training.model.runtime import choose_precision, cpu_flags, is_chief
from model_training.train import build_parser, resolve_config


def test_yaml_round_trip_keeps_every_field(tmp_path):
    cfg = TrainConfig(data_dir="d", model=ModelConfig(input_size=128, decoder_filters=(64,) * 5),
                      optimizer="adamw", epochs=3, preprocessing={"input_size": 128})  # fmt: skip
    cfg.save(tmp_path / "c.yaml")
    back = TrainConfig.load(tmp_path / "c.yaml")
    assert back == cfg
    assert isinstance(back.model, ModelConfig) and back.model.decoder_filters == (64,) * 5


def test_unknown_keys_and_values_are_user_errors(tmp_path):
    (tmp_path / "c.yaml").write_text("epochs: 3\nlearning_rat: 0.1\n")
    with pytest.raises(TrainConfigError, match="learning_rat"):
        TrainConfig.load(tmp_path / "c.yaml")
    with pytest.raises(CspineInputError, match="optimizer 'rmsprop'"):
        TrainConfig(optimizer="rmsprop")
    (tmp_path / "l.yaml").write_text("- a list\n")
    with pytest.raises(TrainConfigError, match="mapping"):
        TrainConfig.load(tmp_path / "l.yaml")


def test_flags_override_yaml_and_model_follows_preprocessing(tmp_path):
    TrainConfig(data_dir="from-yaml", epochs=9, batch_size=4).save(tmp_path / "c.yaml")
    args = build_parser().parse_args(
        ["--config", str(tmp_path / "c.yaml"), "--epochs", "2", "--input-size", "128",
         "--pixel-spacing", "1.25", "--encoder-weights", "none"]
    )  # fmt: skip
    cfg = resolve_config(args)
    assert (cfg.epochs, cfg.batch_size, cfg.data_dir) == (2, 4, "from-yaml")
    assert cfg.preprocessing["input_size"] == 128 and cfg.model.input_size == 128
    assert cfg.preprocessing["pixel_spacing_mm"] == 1.25
    assert cfg.model.channels == len(cfg.preprocessing["channels"])
    assert cfg.model.encoder_weights == "none"


def test_missing_data_is_a_plain_error():
    with pytest.raises(TrainConfigError, match="--data"):
        resolve_config(build_parser().parse_args([]))


def test_precision_follows_cpu_flags_and_gpu(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile\n")
    assert "amx_bf16" in cpu_flags(info)
    assert cpu_flags(tmp_path / "missing") == set()
    assert choose_precision("auto", has_gpu=False, flags={"amx_bf16"}) == "bfloat16"
    assert choose_precision("auto", has_gpu=False, flags={"avx512_bf16"}) == "bfloat16"
    assert choose_precision("auto", has_gpu=False, flags={"avx2"}) == "float32"
    assert choose_precision("auto", has_gpu=True, flags=set()) == "float16"
    assert choose_precision("float32", has_gpu=True) == "float32"


def test_chief_detection_from_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert is_chief()
    cluster = '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": %d}}'
    monkeypatch.setenv("TF_CONFIG", cluster % 0)
    assert is_chief()
    monkeypatch.setenv("TF_CONFIG", cluster % 1)
    assert not is_chief()


def test_init_weights_and_oversample_flags_are_recorded(tmp_path):
    weights = tmp_path / "stage1.keras"
    weights.write_bytes(b"x")
    args = build_parser().parse_args(
        ["--data", "d", "--init-weights", str(weights), "--oversample", "0.5"]
    )
    cfg = resolve_config(args)
    assert cfg.init_weights == str(weights) and cfg.oversample == 0.5
    cfg.save(tmp_path / "c.yaml")
    assert TrainConfig.load(tmp_path / "c.yaml") == cfg
    with pytest.raises(TrainConfigError, match="not a file"):
        resolve_config(build_parser().parse_args(["--data", "d", "--init-weights", "nope.keras"]))
    with pytest.raises(TrainConfigError, match="oversample"):
        TrainConfig(oversample=1.0)
