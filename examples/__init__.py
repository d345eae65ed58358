"""Flower clients that take part in a flchain federation unchanged (see README, "Bring your own model")."""
