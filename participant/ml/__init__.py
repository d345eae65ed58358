"""The machine-learning side of a participant: packaged data, small torch models, training, evaluation."""
