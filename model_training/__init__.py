"""Training, evaluation and export of the cspine model (Keras 3 / TensorFlow)."""
