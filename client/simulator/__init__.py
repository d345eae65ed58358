"""The off-chain simulator: the chain's own StateMachine driven in process by simulated participants."""
