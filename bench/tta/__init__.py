"""Time-to-accuracy on sequential MNIST: data, training and the `tta` command."""
