"""The `sharewise serve` command: the web application and the REST API, optionally with demo data."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from sharewise.cli.console import StatePack, handles_errors, out, settings_for
from sharewise.policy.model import LawPack
from sharewise.services import accounts as accounts_service
from sharewise.services import demo as demo_service
from sharewise.services import workflow as workflow_service
from sharewise.wiring import Control, Settings, control_for, law_for

DEMO_PASSWORD = "lakeview county demo"  # printed; demo stores live in a temporary directory

DEMO_AGENCIES = {
    "lakeview-dhs": "Lakeview County Department of Human Services",
    "lakeview-schools": "Lakeview Unified School District",
}
# user id, name, agency, roles
DEMO_USERS = [
    ("ada", "Ada Administrator", "lakeview-dhs", {"administrator"}),
    ("rosa", "Rosa Requester", "lakeview-dhs", {"requester"}),
    ("pat", "Pat Program", "lakeview-dhs", {"program_reviewer"}),
    ("lee", "Lee Legal", "lakeview-dhs", {"legal_reviewer"}),
    ("sam", "Sam Security", "lakeview-dhs", {"security_officer"}),
    ("avery", "Avery Approver", "lakeview-dhs", {"approver"}),
    ("dana", "Dana Steward", "lakeview-dhs", {"data_steward"}),
    ("audrey", "Audrey Auditor", "lakeview-dhs", {"auditor"}),
    ("olive", "Olive Administrator", "lakeview-schools", {"administrator"}),
    ("blake", "Blake Approver", "lakeview-schools", {"approver"}),
    ("skye", "Skye Requester", "lakeview-schools", {"requester"}),
]


@dataclass(frozen=True)
class DemoAccount:
    """A demo account as printed for people trying sharewise."""

    user_id: str
    roles: str
    agency: str
    password: str
    totp_secret: str | None


def load_demo(control: Control, law: LawPack) -> list[DemoAccount]:
    """Agencies, people with every role and their accounts, and the demo tour's first requests."""
    admin = DEMO_USERS[0][0]
    for agency_id, name in DEMO_AGENCIES.items():
        workflow_service.add_agency(control, agency_id, name, admin)
    accounts = []
    admins: dict[str, str] = {}  # agency -> its first administrator, who creates its other accounts
    for user_id, name, agency, roles in DEMO_USERS:
        workflow_service.add_user(control, user_id, name, agency, set(roles), admin)
        new = accounts_service.create_account(control, admins.get(agency, admin), user_id, DEMO_PASSWORD)
        if "administrator" in roles:
            admins.setdefault(agency, user_id)
        accounts.append(DemoAccount(user_id, ",".join(sorted(roles)), agency, DEMO_PASSWORD, new.totp_secret))
    for title, story, raw in demo_service.STEPS[:3]:
        recipient = "lakeview-schools" if raw["source"]["program"] == "k12_education" else None
        request_id = workflow_service.create_request(control, law, "rosa", title, story, raw, None, recipient)
        if raw["source"]["program"] == "snap":
            workflow_service.submit(control, "rosa", request_id)
    return accounts


@handles_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load demo data into a temporary store and print accounts.")
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Worker processes (one per core suits most servers).")
    ] = 1,
    state_pack: StatePack = None,
) -> None:
    """Serve the web application and the REST API (/api/v1; OpenAPI at /api/v1/openapi.json).

    With --workers N, N processes share the port; they share the store (SQLite WAL or
    PostgreSQL) and one session secret (SHAREWISE_SESSION_SECRET, or one made for this run).
    """
    import uvicorn

    from sharewise.api.app import create_app
    from sharewise.services import share_jobs

    settings = settings_for(state_pack)
    # Settings read by the share runner: a bad value stops the server now, not on a first share page.
    share_jobs.workers_from_env()
    share_jobs.retention_from_env()
    if demo:
        base = Path(tempfile.mkdtemp(prefix="sharewise-demo-"))
        settings = Settings(
            state_pack=settings.state_pack,
            cache_dir=settings.cache_dir,
            data_dir=base / "data",
            key_dir=base / "keys",
        )
    control = control_for(settings)
    law = law_for(settings)
    if demo:
        accounts = load_demo(control, law)
        out.print(f"[bold]sharewise demo[/] (store in {settings.data_dir}); every password is '{DEMO_PASSWORD}'")
        for a in accounts:
            mfa = f" TOTP secret {a.totp_secret}" if a.totp_secret else ""
            out.print(f"  {a.user_id:8} {a.agency:18} {a.roles:20}{mfa}")
    out.print(f"Open http://{'localhost' if host == '127.0.0.1' else host}:{port}/ (API: /api/v1/docs)")
    if workers == 1:
        uvicorn.run(create_app(settings, control, law), host=host, port=port, log_level="info", server_header=False)
        return
    control.store.dispose()
    _share_with_workers(settings)
    uvicorn.run(
        "sharewise.api.app:create_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="info",
        server_header=False,
    )


def _share_with_workers(settings: Settings) -> None:
    """Worker processes build the app from the environment: hand them these settings and one session secret."""
    import os
    import secrets

    os.environ.setdefault("SHAREWISE_SESSION_SECRET", secrets.token_urlsafe(32))
    for name, value in (
        ("SHAREWISE_DATA_DIR", settings.data_dir),
        ("SHAREWISE_KEY_DIR", settings.key_dir),
        ("SHAREWISE_STATE_PACK", settings.state_pack),
        ("SHAREWISE_DATABASE_URL", settings.database_url),
    ):
        if value is not None:
            os.environ[name] = str(value)


def serve_workspace(workdir: Path, law: LawPack, host: str, port: int) -> None:
    """Serve a demo chain's workspace: its people get accounts (printed) and the web app opens on its store."""
    import uvicorn

    from sharewise.api.app import create_app
    from sharewise.services import demo_chain

    opened = demo_chain.open_accounts(workdir, DEMO_PASSWORD)
    settings = demo_chain.workspace_settings(workdir)
    out.print(f"[bold]The chain in the browser[/]: every password is '{DEMO_PASSWORD}'")
    for user_id, agency, roles, secret in opened:
        mfa = f" TOTP secret {secret}" if secret else ""
        out.print(f"  {user_id:16} {agency:6} {roles:18}{mfa}")
    out.print(f"Open http://{'localhost' if host == '127.0.0.1' else host}:{port}/ (API: /api/v1/docs)")
    uvicorn.run(create_app(settings, law=law), host=host, port=port, log_level="info", server_header=False)
