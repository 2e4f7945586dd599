"""The synthetic generator's rate options (`--twins-rate` ...), shared by `sharewise synth` and `link evaluate`."""

from __future__ import annotations

from typing import Annotated

import typer

from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.pipeline.synth import SynthRates

DEFAULT = SynthRates()
PANEL = "Rates of real-data phenomena (shares from 0 to 1; defaults are realistic)"

NicknameRate = Annotated[
    float,
    typer.Option(
        "--nickname-rate",
        help="Records of a person whose given name has a common nickname that carry the nickname.",
        rich_help_panel=PANEL,
    ),
]
TypoRate = Annotated[
    float,
    typer.Option(
        "--typo-rate",
        help="Records with a typo in the surname (letters swapped, dropped or replaced).",
        rich_help_panel=PANEL,
    ),
]
MoveRate = Annotated[
    float,
    typer.Option(
        "--move-rate",
        help="People with a second address (their records carry one or the other).",
        rich_help_panel=PANEL,
    ),
]
MissingSsnRate = Annotated[
    float, typer.Option("--missing-ssn-rate", help="Records without an SSN.", rich_help_panel=PANEL)
]
DuplicateRate = Annotated[
    float,
    typer.Option("--duplicate-rate", help="Enrolments recorded twice in one program.", rich_help_panel=PANEL),
]
TwinsRate = Annotated[
    float,
    typer.Option(
        "--twins-rate",
        help="People who are one of a pair of twins (same surname, home, phone, birth date and programs; own given "
        "name, sex and SSN). About 3 % of US births are twins.",
        rich_help_panel=PANEL,
    ),
]
HouseholdRate = Annotated[
    float,
    typer.Option(
        "--household-rate",
        help="People who live with an earlier person's family (same surname, address and phone).",
        rich_help_panel=PANEL,
    ),
]
SharedAddressRate = Annotated[
    float,
    typer.Option(
        "--shared-address-rate",
        help="People who live where an unrelated household lives (another surname, same street address). "
        "With --household-rate, at most 1.",
        rich_help_panel=PANEL,
    ),
]
DobTransposedRate = Annotated[
    float,
    typer.Option(
        "--dob-transposed-rate",
        help="Records whose date of birth has day and month swapped (where the swap is still a date).",
        rich_help_panel=PANEL,
    ),
]

OPTIONS: dict[str, str] = {
    "nickname": "--nickname-rate",
    "typo": "--typo-rate",
    "move": "--move-rate",
    "missing_ssn": "--missing-ssn-rate",
    "duplicate": "--duplicate-rate",
    "twins": "--twins-rate",
    "household": "--household-rate",
    "shared_address": "--shared-address-rate",
    "dob_transposed": "--dob-transposed-rate",
}


def synth_rates(
    *,
    nickname: float,
    typo: float,
    move: float,
    missing_ssn: float,
    duplicate: float,
    twins: float,
    household: float,
    shared_address: float,
    dob_transposed: float,
) -> SynthRates:
    """The rates the options give; InvalidDataError naming every option out of range (all at once)."""
    rates = SynthRates(
        nickname=nickname,
        typo=typo,
        move=move,
        missing_ssn=missing_ssn,
        duplicate=duplicate,
        twins=twins,
        household=household,
        shared_address=shared_address,
        dob_transposed=dob_transposed,
    )
    problems: list[Problem] = []
    for problem in rates.problems():
        name = problem.location.removeprefix("rates.")
        value = getattr(rates, name)
        if not 0 <= value <= 1:  # also refuses nan
            problems.append(Problem(OPTIONS[name], f"{value:g} is out of range: give a share from 0 to 1"))
        else:
            problems.append(
                Problem(
                    f"{OPTIONS['household']} and {OPTIONS['shared_address']}",
                    f"add up to {rates.household + rates.shared_address:g}: at most 1",
                )
            )
    if problems:
        raise InvalidDataError("invalid rates", problems)
    return rates
