"""A participant: a Flower-style trainer and judge that follows the chain's rounds through a gateway."""
