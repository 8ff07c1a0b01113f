"""The implementations: layer contract, TF builders, canonical weights, NumPy reference, devices."""
