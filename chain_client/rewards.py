"""The reward rule (docs/rewards.md): what one accepted receipt earns, in the token's smallest unit. Pure and
deterministic: integers only, so every verifier computes the same amount."""

TOKEN = 10**18  # 3DP has 18 decimals
BASE_PER_PRINT = TOKEN // 2  # 0.5 3DP for a completed print
PER_MINUTE = TOKEN // 100  # 0.01 3DP per whole minute of print time
MAX_MINUTES = 48 * 60  # print time counted at most two days
ESTIMATE_FACTOR = 2  # and at most twice the G-code's own estimate, when the job registry knows it
DEFAULT_PERMILLE = 1000
MATERIAL_PERMILLE = {
    "PLA": 1000,
    "PETG": 1100,
    "ABS": 1200,
    "ASA": 1200,
    "TPU": 1300,
    "PC": 1500,
    "PA": 1500,
    "NYLON": 1500,
}
PAID_OUTCOMES = ("done",)


def counted_minutes(print_seconds: int, estimate_seconds=None) -> int:
    """Whole minutes of print time that earn: capped by MAX_MINUTES and by twice the estimate when known."""
    seconds = max(0, print_seconds)
    if estimate_seconds is not None:
        seconds = min(seconds, ESTIMATE_FACTOR * estimate_seconds)
    return min(seconds // 60, MAX_MINUTES)


def reward(outcome: str, material: str, print_seconds: int, estimate_seconds=None) -> int:
    """What a print earns: nothing unless it was `done`; else (base + per minute) x the material's factor."""
    if outcome not in PAID_OUTCOMES:
        return 0
    permille = MATERIAL_PERMILLE.get(material.upper(), DEFAULT_PERMILLE)
    return (BASE_PER_PRINT + PER_MINUTE * counted_minutes(print_seconds, estimate_seconds)) * permille // 1000


def text(amount: int) -> str:
    """An amount in 3DP with its decimals, for people: 1500000000000000000 -> '1.5 3DP'."""
    whole, fraction = divmod(amount, TOKEN)
    digits = ("%018d" % fraction).rstrip("0")
    return "%d%s 3DP" % (whole, "." + digits if digits else "")
