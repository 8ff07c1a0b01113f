"""rnnbench: benchmark suite for TensorFlow RNN implementations."""

__version__ = "0.1.0"
