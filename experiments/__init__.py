"""Experiments on the chain: the in-process simulator, baselines without defence, sweeps, reports, the demo."""
