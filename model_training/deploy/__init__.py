"""Deployment formats of the trained model: ONNX (fp32, int8), SavedModel, TensorRT, and the
accuracy gate every reduced-precision export must pass (see ``model_training.export``, whose
formats are in :mod:`.formats` and :mod:`.openvino_gate`)."""
