"""The cspine network (DenseNet121 U-Net with fracture heads), its losses and training runtime."""

from .backbones import BACKBONES, Backbone, get_backbone
from .config import LossConfig, ModelConfig, TrainConfig, TrainConfigError
from .unet import OUTPUTS, build_model, encoder_layers, set_encoder_trainable

__all__ = [
    "BACKBONES",
    "OUTPUTS",
    "Backbone",
    "LossConfig",
    "ModelConfig",
    "TrainConfig",
    "TrainConfigError",
    "build_model",
    "encoder_layers",
    "get_backbone",
    "set_encoder_trainable",
]
