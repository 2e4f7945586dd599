"""The loader rejects broken law files, each problem with file:line, all at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sharewise.domain.errors import InvalidLawPackError
from sharewise.policy.load import load_law
from sharewise.policy.packfiles import FEDERAL_PACK

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "law_invalid"


def _mini_pack(tmp_path: Path) -> Path:
    root = tmp_path / "federal"
    root.mkdir()
    for name in ("pack.yaml", "vocabulary.yaml"):
        shutil.copy(FEDERAL_PACK / name, root / name)
    shutil.copytree(FEDERAL_PACK / "7-cfr-272-snap", root / "7-cfr-272-snap")
    return root


EXPECTED = {
    "duplicate_key.yaml": ("duplicate key 'kind'", 9),
    "unknown_program.yaml": ("did you mean 'snap'", 9),
    "unknown_fact.yaml": ("did you mean 'court_order'", 9),
    "bad_operator.yaml": ("unknown operator 'equals'", 9),
    "unknown_path.yaml": ("did you mean 'recipient.kind'", 9),
    "consent_without_elements.yaml": ("must list its consent_elements", None),
    "wrong_authority_prefix.yaml": ("must start with its authority id 'snap.'", 2),
    "unknown_document.yaml": ("did you mean 'data_sharing_agreement'", 10),
    "duplicate_rule_id.yaml": ("duplicate rule id 'snap.program-administration'", 2),
    "missing_summary.yaml": ("summary: Field required", 2),
    "uncertain_without_notes.yaml": ("must explain itself in notes", 2),
    "overlapping_versions.yaml": ("overlap", 10),
    "malformed.yaml": ("malformed YAML", None),
    "consent_reads_valid_consent.yaml": ("must not test facts.valid_consent", 9),
}


def test_every_fixture_has_an_expectation() -> None:
    assert {p.name for p in FIXTURES.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_rule_file_is_rejected_with_its_location(tmp_path: Path, name: str) -> None:
    root = _mini_pack(tmp_path)
    shutil.copy(FIXTURES / name, root / "7-cfr-272-snap" / "fixture.yaml")
    with pytest.raises(InvalidLawPackError) as info:
        load_law(federal_pack=root)
    message, line = EXPECTED[name]
    matching = [p for p in info.value.problems if message in p.message]
    assert matching, [str(p) for p in info.value.problems]
    assert "fixture.yaml" in matching[0].location
    if line is not None:
        assert matching[0].location.endswith(f":{line}"), str(matching[0])


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    root = _mini_pack(tmp_path)
    for name in ("unknown_fact.yaml", "unknown_document.yaml", "missing_summary.yaml"):
        shutil.copy(FIXTURES / name, root / "7-cfr-272-snap" / f"x-{name}")
    with pytest.raises(InvalidLawPackError) as info:
        load_law(federal_pack=root)
    files = {p.location.split(":")[0].rsplit("/", 1)[-1] for p in info.value.problems}
    assert files >= {"x-unknown_fact.yaml", "x-unknown_document.yaml", "x-missing_summary.yaml"}


def test_state_pack_cannot_add_programs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "pack.yaml").write_text("id: st\nversion: '1'\nkind: state\nextends: federal\nname: State\n")
    (state / "vocabulary.yaml").write_text("programs:\n  lottery: {label: Lottery}\n")
    with pytest.raises(InvalidLawPackError) as info:
        load_law(state)
    assert any("public contract" in p.message for p in info.value.problems)


def test_missing_state_pack_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidLawPackError) as info:
        load_law(tmp_path / "nope")
    assert "not found" in info.value.problems[0].message


def test_content_hash_changes_with_the_law(tmp_path: Path) -> None:
    root = _mini_pack(tmp_path)
    first = load_law(federal_pack=root).content_hash
    rules = root / "7-cfr-272-snap" / "disclosures.yaml"
    rules.write_text(rules.read_text().replace("Comptroller General audits", "Comptroller General audit"))
    assert load_law(federal_pack=root).content_hash != first
