"""flchain's application: a deterministic state machine served to CometBFT over ABCI 2.0."""
