"""Basis points: the unit of every share the chain keeps (params, verdicts, records), 10000 = 100%."""

BPS = 10_000
