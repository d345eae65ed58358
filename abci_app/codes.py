"""Result codes of txs and queries. Each rejection has its own code so clients can react to it."""

from enum import IntEnum

CODESPACE = "flchain"  # what CometBFT shows beside a non-zero code of this app


class Code(IntEnum):
    OK = 0
    # Stateless: the bytes themselves are wrong.
    TX_TOO_LARGE = 1
    TX_UNDECODABLE = 2
    BAD_PUBLIC_KEY = 3
    BAD_SIGNATURE = 4
    WRONG_CHAIN_ID = 5
    NO_MESSAGES = 6
    # Account checks.
    UNKNOWN_ACCOUNT = 10
    BAD_NONCE = 11
    INSUFFICIENT_BALANCE = 12
    # Staking.
    BOND_BELOW_THRESHOLD = 20
    INVALID_AMOUNT = 21
    NOT_BONDED = 22
    UNBOND_LEAVES_TOO_LITTLE = 23
    ROLE_LOCKED = 24
    # Rounds.
    WRONG_PHASE = 30
    WRONG_ROUND = 31
    NOT_PROPOSER = 32
    ALREADY_SUBMITTED = 33
    NOT_VOTER = 34
    ALREADY_VOTED = 35
    BAD_BALLOT = 36
    # Update contents.
    BAD_SHAPE = 40
    NON_FINITE = 41
    NORM_TOO_LARGE = 42
    BAD_NUM_SAMPLES = 43
    EMPTY_UPDATE = 44
    # Sealed updates and ballots (commit, then reveal).
    BAD_COMMITMENT = 60  # not a 32-byte digest
    BAD_SALT = 61  # not 32 bytes
    NOT_COMMITTED = 62  # a reveal without a commitment in this round
    ALREADY_COMMITTED = 63
    COMMITMENT_MISMATCH = 64  # the reveal is not what was committed
    # Models by reference (the bytes in an object store, their digest on chain).
    BAD_REFERENCE = 65  # a malformed BlobRef, or inline tensors where the chain expects a reference (or back)
    NOT_AGGREGATOR = 66  # an aggregate report from a party whose ballot did not count in the round
    ALREADY_REPORTED = 67
    BAD_AGGREGATE_REPORT = 68  # norms out of bounds, or not one per included update
    BAD_FINGERPRINT = 69  # an update by reference without its fingerprint, or with one of another form
    # Queries.
    UNKNOWN_PATH = 50
    NOT_FOUND = 51
    BAD_ADDRESS = 52


def code_name(code: int, codespace: str) -> str | None:
    """`bad_nonce` for (11, "flchain"); None for a code that is not this app's."""
    if codespace != CODESPACE or code not in Code._value2member_map_:
        return None
    return Code(code).name.lower()


class TxError(Exception):
    """A tx or message that the state machine refuses; carries the code and a one-line reason."""

    def __init__(self, code: Code, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name.lower()}: {self.message}"
