"""The `sharewise account` commands end to end, on a fresh store named by SHAREWISE_DATABASE_URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from sharewise.cli import accounts as accounts_cli
from sharewise.cli.main import app as main_app
from sharewise.domain.errors import AccessDeniedError, NotFoundError
from sharewise.services import accounts as accounts_service
from sharewise.services import audit as audit_service
from sharewise.wiring import Control, Settings, control_for

runner = CliRunner()
ADA_PASSWORD = "ada keeps the county running"
RITA_PASSWORD = "requests filed on time every week"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SHAREWISE_DATABASE_URL", f"sqlite:///{tmp_path / 'accounts.db'}")
    monkeypatch.setenv("SHAREWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHAREWISE_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("SHAREWISE_CACHE_DIR", "off")
    monkeypatch.delenv("SHAREWISE_USER", raising=False)
    hasher = accounts_service._hasher()
    accounts_service.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    accounts_service.use_hasher(hasher)


def main(*args: str) -> str:
    result = runner.invoke(main_app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def account(*args: str, input: str | None = None, code: int = 0) -> str:
    result = runner.invoke(accounts_cli.app, list(args), input=input)
    assert result.exit_code == code, result.output
    return result.output


def directory() -> None:
    main("agency", "add", "dhs", "Lakeview DHS")
    main("agency", "add", "schools", "Lakeview Schools")
    main("user", "add", "ada", "--name", "Ada", "--agency", "dhs", "--roles", "administrator")
    main("user", "add", "rita", "--name", "Rita", "--agency", "dhs", "--roles", "requester,data_steward", "--as", "ada")
    main("user", "add", "aud", "--name", "Audrey", "--agency", "dhs", "--roles", "auditor", "--as", "ada")
    main("user", "add", "olive", "--name", "Olive", "--agency", "schools", "--roles", "administrator", "--as", "ada")
    main("user", "add", "sky", "--name", "Sky", "--agency", "schools", "--roles", "requester", "--as", "ada")


def control() -> Control:
    return control_for(Settings.from_env())


def accounts() -> tuple[str, str]:
    """ada's account (bootstrapping, from a hidden prompt) and rita's (from a file); ada's TOTP secret."""
    directory()
    created = account("create", "ada", input=f"{ADA_PASSWORD}\n{ADA_PASSWORD}\n")
    assert ADA_PASSWORD not in created
    secret = created.split("TOTP secret: ")[1].split()[0]
    return secret, created


def test_the_first_account_needs_no_administrator_and_a_privileged_one_gets_a_totp_secret(tmp_path: Path) -> None:
    secret, created = accounts()
    assert "account created for ada" in created
    assert f"otpauth://totp/sharewise:ada?secret={secret}&issuer=sharewise" in created
    c = control()
    assert accounts_service.totp_secret(c, "ada") == secret
    user = accounts_service.authenticate(c, "ada", ADA_PASSWORD, pyotp.TOTP(secret).now())
    assert user.id == "ada"
    with pytest.raises(AccessDeniedError, match="sign-in failed"):
        accounts_service.authenticate(c, "ada", ADA_PASSWORD, None)


def test_an_administrator_creates_an_account_from_a_password_file(tmp_path: Path) -> None:
    accounts()
    password_file = tmp_path / "rita.txt"
    password_file.write_text(RITA_PASSWORD + "\n")
    created = account("create", "rita", "--password-file", str(password_file), "--as", "ada")
    assert "account created for rita" in created and "TOTP" not in created and RITA_PASSWORD not in created
    c = control()
    assert accounts_service.totp_secret(c, "rita") is None
    assert accounts_service.authenticate(c, "rita", RITA_PASSWORD, None).id == "rita"
    actions = [r["action"] for r in audit_service.log(c, "aud", "account", "rita")]
    assert "account-created" in actions and "signed-in" in actions


def test_only_an_administrator_of_the_agency_may_create_accounts(tmp_path: Path) -> None:
    accounts()
    password_file = tmp_path / "pw.txt"
    password_file.write_text(RITA_PASSWORD)
    account("create", "rita", "--password-file", str(password_file), "--as", "ada")
    refused = account("create", "aud", "--password-file", str(password_file), "--as", "rita", code=9)
    assert "access_denied" in refused and "administrator role is needed" in refused
    account("create", "olive", "--password-file", str(password_file), "--as", "ada")  # the agency's first account
    refused = account("create", "sky", "--password-file", str(password_file), "--as", "ada", code=9)
    assert "another agency" in refused
    account("create", "sky", "--password-file", str(password_file), "--as", "olive")
    again = account("create", "sky", "--password-file", str(password_file), "--as", "olive", code=7)
    assert "already has an account" in again


def test_a_weak_password_is_refused_with_every_reason_and_never_printed(tmp_path: Path) -> None:
    directory()
    refused = account("create", "ada", input="abcdefgh\nabcdefgh\n", code=2)
    assert "invalid_data" in refused and "password: a sequence of characters is easily guessed" in refused
    assert "abcdefgh" not in refused
    refused = account("create", "ada", input="aaaaaaaa\naaaaaaaa\n", code=2)
    assert "one or two repeated characters" in refused
    with pytest.raises(NotFoundError, match="no account"):
        accounts_service.totp_secret(control(), "ada")
    account("create", "ada", input=f"{ADA_PASSWORD}\n{ADA_PASSWORD}\n")
    password_file = tmp_path / "pw.txt"
    password_file.write_text("rita-in-lakeview\n")
    refused = account("create", "rita", "--password-file", str(password_file), "--as", "ada", code=2)
    assert "password: do not use your user name or the name of the service" in refused
    assert "rita-in-lakeview" not in refused


def test_the_hidden_prompt_asks_again_when_the_two_entries_differ(tmp_path: Path) -> None:
    directory()
    out = account("create", "ada", input=f"{ADA_PASSWORD}\nsomething else\n{ADA_PASSWORD}\n{ADA_PASSWORD}\n")
    assert "do not match" in out and "account created for ada" in out
    assert ADA_PASSWORD not in out and "something else" not in out


def test_an_unreadable_or_empty_password_file_is_reported_by_option(tmp_path: Path) -> None:
    directory()
    missing = account("create", "ada", "--password-file", str(tmp_path / "absent.txt"), code=2)
    assert "--password-file: no such file or directory" in missing
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    assert "--password-file: the file's first line is empty" in account(
        "create", "ada", "--password-file", str(empty), code=2
    )


def test_a_user_changes_their_password_by_proving_the_current_one(tmp_path: Path) -> None:
    accounts()
    current, new = tmp_path / "current.txt", tmp_path / "new.txt"
    current.write_text(RITA_PASSWORD)
    account("create", "rita", "--password-file", str(current), "--as", "ada")
    new.write_text("a brand new phrase for the week\n")
    changed = account("password", "rita", "--current-password-file", str(current), "--password-file", str(new))
    assert "password changed for rita" in changed and "brand new" not in changed
    c = control()
    assert accounts_service.authenticate(c, "rita", "a brand new phrase for the week", None).id == "rita"
    with pytest.raises(AccessDeniedError, match="sign-in failed"):
        accounts_service.authenticate(c, "rita", RITA_PASSWORD, None)
    prompted = account(
        "password", "rita", input=f"a brand new phrase for the week\n{RITA_PASSWORD} again\n{RITA_PASSWORD} again\n"
    )
    assert "password changed for rita" in prompted and RITA_PASSWORD not in prompted
    assert "password-changed" in [r["action"] for r in audit_service.log(c, "aud", "account", "rita")]


def test_a_wrong_current_password_or_a_weak_new_one_changes_nothing(tmp_path: Path) -> None:
    accounts()
    wrong = account("password", "ada", input="not the password\nanother good phrase\nanother good phrase\n", code=9)
    assert "access_denied" in wrong and "not the password" not in wrong
    weak = account("password", "ada", input=f"{ADA_PASSWORD}\nqwertyuiop\nqwertyuiop\n", code=2)
    assert "a sequence of characters is easily guessed" in weak
    c = control()
    secret = accounts_service.totp_secret(c, "ada")
    assert secret
    assert accounts_service.authenticate(c, "ada", ADA_PASSWORD, pyotp.TOTP(secret).now()).id == "ada"


def test_a_token_is_issued_to_standard_output_and_revoked(tmp_path: Path) -> None:
    accounts()
    password_file = tmp_path / "pw.txt"
    password_file.write_text(RITA_PASSWORD)
    account("create", "rita", "--password-file", str(password_file), "--as", "ada")
    result = runner.invoke(
        accounts_cli.app, ["token", "issue", "--roles", "requester", "--label", "nightly job", "--as", "rita"]
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("sw_") and "\n" not in secret
    token_id = result.stderr.split("token ")[1].split()[0]
    assert token_id.startswith("t-") and "expiring in 90 days" in result.stderr
    c = control()
    acting = accounts_service.user_for_token(c, secret)
    assert acting.id == "rita" and acting.roles == frozenset({"requester"})
    refused = account("token", "revoke", token_id, "--as", "aud", code=9)
    assert "may not revoke" in refused
    assert f"token {token_id} revoked" in account("token", "revoke", token_id, "--as", "rita")
    accounts_service._token_cache.clear()
    with pytest.raises(AccessDeniedError, match="revoked or expired"):
        accounts_service.user_for_token(c, secret)


def test_a_token_is_refused_roles_its_user_lacks_a_missing_label_and_an_unknown_user(tmp_path: Path) -> None:
    accounts()
    refused = account("token", "issue", "--roles", "requester,administrator", "--label", "x", "--as", "ada", code=9)
    assert "roles they do not hold: ['requester']" in refused
    empty = account("token", "issue", "--roles", " , ", "--label", "x", "--as", "ada", code=2)
    assert "roles: name at least one role" in empty
    unlabelled = account("token", "issue", "--roles", "administrator", "--label", " ", "--as", "ada", code=2)
    assert "label: say what the token is for" in unlabelled
    nobody = account("token", "issue", "--roles", "administrator", "--label", "x", code=2)
    assert "--as: give --as USER or set SHAREWISE_USER" in nobody
    too_long = runner.invoke(
        accounts_cli.app,
        ["token", "issue", "--roles", "administrator", "--label", "x", "--expires-in-days", "400", "--as", "ada"],
    )
    assert too_long.exit_code == 2
    assert account("token", "revoke", "t-000000000000", "--as", "ada", code=4).count("no API token") == 1


def test_your_tokens_are_listed_newest_first_with_their_state_and_never_their_secret(tmp_path: Path) -> None:
    accounts()
    password_file = tmp_path / "pw.txt"
    password_file.write_text(RITA_PASSWORD)
    account("create", "rita", "--password-file", str(password_file), "--as", "ada")
    assert "no API tokens" in account("token", "list", "--as", "rita")
    issued = []
    for roles, label in (("requester", "nightly job"), ("requester,data_steward", "weekly report")):
        result = runner.invoke(accounts_cli.app, ["token", "issue", "--roles", roles, "--label", label, "--as", "rita"])
        assert result.exit_code == 0, result.output
        issued.append((result.stderr.split("token ")[1].split()[0], result.stdout.strip()))
    account("token", "revoke", issued[0][0], "--as", "rita")
    result = runner.invoke(accounts_cli.app, ["token", "list", "--as", "rita"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [issued[1][0], issued[0][0]]
    assert "active" in lines[0] and "data_steward,requester" in lines[0] and lines[0].endswith("weekly report")
    assert "revoked " in lines[1] and lines[1].endswith("nightly job")
    assert all(secret not in result.output for _, secret in issued)
    assert "no API tokens" in account("token", "list", "--as", "ada")  # only your own
    nobody = account("token", "list", code=2)
    assert "--as: give --as USER or set SHAREWISE_USER" in nobody
    assert "no user 'ghost'" in account("token", "list", "--as", "ghost", code=4)


def test_an_administrator_resets_a_password_from_a_hidden_prompt_or_a_file(tmp_path: Path) -> None:
    secret, _ = accounts()
    password_file = tmp_path / "pw.txt"
    password_file.write_text(RITA_PASSWORD)
    account("create", "rita", "--password-file", str(password_file), "--as", "ada")
    reset = account("reset", "rita", "--as", "ada", input="a phrase set by the administrator\n" * 2)
    assert "password reset for rita" in reset and "a phrase set by the administrator" not in reset
    c = control()
    with pytest.raises(AccessDeniedError):
        accounts_service.authenticate(c, "rita", RITA_PASSWORD, None)
    assert accounts_service.authenticate(c, "rita", "a phrase set by the administrator", None).id == "rita"
    new_file = tmp_path / "new.txt"
    new_file.write_text("another phrase from a file\n")
    assert "password reset for rita" in account("reset", "rita", "--password-file", str(new_file), "--as", "ada")
    assert accounts_service.authenticate(c, "rita", "another phrase from a file", None).id == "rita"
    actions = [r["action"] for r in audit_service.log(c, "aud", "account", "rita")]
    assert actions.count("password-reset-completed") == 2
    assert accounts_service.totp_secret(c, "ada") == secret  # the administrator's own account is untouched


def test_a_password_reset_is_refused_to_non_administrators_other_agencies_and_weak_passwords(tmp_path: Path) -> None:
    accounts()
    password_file = tmp_path / "pw.txt"
    password_file.write_text(RITA_PASSWORD)
    account("create", "rita", "--password-file", str(password_file), "--as", "ada")
    account("create", "olive", "--password-file", str(password_file), "--as", "ada")
    good = tmp_path / "good.txt"
    good.write_text("a perfectly good new phrase")
    refused = account("reset", "ada", "--password-file", str(good), "--as", "rita", code=9)
    assert "access_denied" in refused and "administrator role is needed" in refused
    assert "another agency" in account("reset", "rita", "--password-file", str(good), "--as", "olive", code=9)
    assert "their own password" in account("reset", "ada", "--password-file", str(good), "--as", "ada", code=9)
    assert "no account 'aud'" in account("reset", "aud", "--password-file", str(good), "--as", "ada", code=4)
    weak = account("reset", "rita", "--as", "ada", input="qwertyuiop\nqwertyuiop\n", code=2)
    assert "a sequence of characters is easily guessed" in weak and "qwertyuiop" not in weak
    assert "--as: give --as USER" in account("reset", "rita", "--password-file", str(good), code=2)
    assert accounts_service.authenticate(control(), "rita", RITA_PASSWORD, None).id == "rita"  # unchanged
