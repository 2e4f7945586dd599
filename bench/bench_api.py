"""Benchmark the web app and the API on SQLite: p95 page render time and determinations per second.

A store is seeded with sharing requests and audit records; uvicorn serves the app on loopback and a
thread pool of httpx clients drives it. In-process `evaluate` is measured in the same run for comparison.

    uv run python bench/bench_api.py [--requests 10000] [--audit 100000] [--seconds 10] [--append docs/performance.md]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from argon2 import PasswordHasher

from sharewise.cli.serve import DEMO_PASSWORD, load_demo
from sharewise.domain.events import AuditEvent
from sharewise.policy.evaluate import evaluate
from sharewise.policy.request_parse import parse_request
from sharewise.services import accounts
from sharewise.wiring import Settings, control_for, law_for
from sharewise.workflow.store import SharingRequestRecord, SqlWorkflowStore

REQUEST = {
    "source": {"program": "snap"},
    "recipient": {"kind": "state_or_local_agency", "program": "tanf"},
    "purpose": "eligibility_determination",
    "data": ["identity", "contact", "eligibility_and_benefits"],
    "form": "identified",
}


LOADGEN = """
import asyncio, sys, time

BODY = sys.argv[5].encode()


async def connection(port, payload, stop, counts, k):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < stop:
        writer.write(payload)
        head = await reader.readuntil(b"\\r\\n\\r\\n")
        status = int(head.split(b" ", 2)[1])
        length = next(int(h.split(b":")[1]) for h in head.split(b"\\r\\n") if h.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        if status != 200:
            raise SystemExit(f"status {status}")
        counts[k] += 1
    writer.close()


async def main(port, token, seconds, connections):
    payload = (
        "POST /api/v1/determinations HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n"
        f"Authorization: Bearer {token}\\r\\nContent-Type: application/json\\r\\n"
        f"Content-Length: {len(BODY)}\\r\\n\\r\\n"
    ).encode() + BODY
    counts = [0] * connections
    start = time.perf_counter()
    await asyncio.gather(*(connection(port, payload, start + seconds, counts, k) for k in range(connections)))
    print(sum(counts) / (time.perf_counter() - start))


asyncio.run(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
"""


SERVER = """
import uvicorn
from argon2 import PasswordHasher
from sharewise.api.app import create_app
from sharewise.services import accounts
from sharewise.wiring import Settings

def make():
    accounts.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return create_app(Settings.from_env(), session_secret="bench", secure_cookies=False)

if __name__ == "__main__":
    uvicorn.run("bench_server:make", factory=True, workers={workers}, app_dir={app_dir!r},
                host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""


def seed(control: object, requests: int, audit: int) -> str:
    """Bulk-insert requests and audit records (through the stores, in batches); return one request id."""
    store = SqlWorkflowStore()
    now = dt.datetime.now(dt.UTC)
    first = ""
    batch = 1000
    for start in range(0, max(requests, audit), batch):
        with control.store.transaction() as conn:  # type: ignore[attr-defined]
            for i in range(start, min(start + batch, requests)):
                request_id = f"r-bench-{i:06d}-{secrets.token_hex(2)}"
                first = first or request_id
                store.create(
                    conn,
                    SharingRequestRecord(
                        request_id,
                        "lakeview-dhs",
                        None,
                        f"Bench {i}",
                        "benchmark",
                        None,
                        REQUEST,
                        "draft",
                        "rosa",
                        now,
                        None,
                        None,
                        1,
                        (),
                    ),
                )
            for i in range(start, min(start + batch, audit)):
                control.trail.append(  # type: ignore[attr-defined]
                    conn, AuditEvent("bench-recorded", "system", "benchmark", str(i), source="system")
                )
    return first


def server_version(database_url: str) -> str:
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18] if len(samples) >= 20 else max(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--audit", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16, help="Load-generator keep-alive connections.")
    parser.add_argument("--server-workers", type=int, default=2, help="uvicorn worker processes.")
    parser.add_argument("--renders", type=int, default=60)
    parser.add_argument("--append", type=Path, default=None, help="Append the results as a section to this file.")
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/test",
        default=None,
        help="Run on a fresh PostgreSQL database created through this server (dropped afterwards) instead of SQLite.",
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(postgres_database(args.postgres)) if args.postgres else None
        run(args, database_url)


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the given server (its SQLAlchemy URL), dropped afterwards."""
    import psycopg

    name = f"sw_bench_{secrets.token_hex(5)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(args: argparse.Namespace, database_url: str | None) -> None:

    accounts.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))  # sign-in is not measured
    tmp = Path(tempfile.mkdtemp(prefix="sharewise-bench-api-"))
    settings = Settings(data_dir=tmp / "data", key_dir=tmp / "keys", cache_dir=None, database_url=database_url)
    control = control_for(settings)
    law = law_for(settings)
    load_demo(control, law)
    t0 = time.perf_counter()
    request_id = seed(control, args.requests, args.audit)
    seeding = time.perf_counter() - t0
    token = accounts.issue_token(control, "rosa", {"requester"}, "bench").secret

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    # The server runs in its own process, so the load generator does not share its interpreter lock.
    env = {**os.environ, "SHAREWISE_DATA_DIR": str(settings.data_dir), "SHAREWISE_KEY_DIR": str(settings.key_dir)}
    env["SHAREWISE_CACHE_DIR"] = "off"
    if database_url:
        env["SHAREWISE_DATABASE_URL"] = database_url
    script = tmp / "bench_server.py"
    script.write_text(SERVER.format(port=port, workers=args.server_workers, app_dir=str(tmp)), encoding="utf-8")
    server = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        assert server.poll() is None, "the server process ended"
        try:
            httpx.get(base + "/sign-in")
            break
        except httpx.TransportError:
            time.sleep(0.1)

    # Page renders, signed in as a requester.
    web = httpx.Client(base_url=base, timeout=300)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', web.get("/sign-in").text)
    assert csrf
    web.post("/sign-in", data={"csrf_token": csrf.group(1), "username": "rosa", "password": DEMO_PASSWORD})
    pages = {
        "interview (with determination)": "/interview?source=snap&kind=state_or_local_agency&rprogram=tanf&purpose=eligibility_determination&data=identity",
        "request detail": f"/requests/{request_id}",
        "law library": "/law",
        "dashboard (queue)": "/",
        "requests list (all of the agency)": "/requests",
    }
    renders: dict[str, float] = {}
    for name, path in pages.items():
        samples = []
        count = args.renders if "list" not in name and "dashboard" not in name else 3  # slow at scale: few samples
        for _ in range(count):
            t = time.perf_counter()
            r = web.get(path)
            samples.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, (path, r.status_code)
        renders[name] = p95(samples)

    # Determinations through the API from a loopback load generator in its own process: asyncio
    # streams over keep-alive connections with the request bytes built once (like wrk), so the
    # generator spends a small fraction of a core and the server gets the rest of the machine.
    loadgen = subprocess.run(
        [
            sys.executable,
            "-c",
            LOADGEN,
            str(port),
            token,
            str(args.seconds),
            str(args.connections),
            json.dumps({"request": REQUEST}),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    api_rate = float(loadgen.stdout.split()[0])
    server.terminate()
    server.wait(10)

    parsed = parse_request(REQUEST, law.vocabulary)
    today = dt.date.today()
    n = 0
    t = time.perf_counter()
    while time.perf_counter() - t < 3:
        evaluate(law, parsed, today)
        n += 1
    local_rate = n / (time.perf_counter() - t)

    lines = [
        "",
        f"## API and web pages (bench/bench_api.py, {dt.date.today().isoformat()})",
        "",
        f"{'PostgreSQL ' + server_version(database_url) if database_url else 'SQLite (WAL, synchronous=FULL)'}, {args.requests:,} sharing requests and {args.audit:,} audit records "
        f"seeded in {seeding:.0f} s; uvicorn ({args.server_workers} worker process(es)) on loopback, load generator in another process; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
    ]
    for name, value in renders.items():
        lines.append(f"| p95 page render: {name} | {value:.0f} ms | < 200 ms |")
    lines.append(
        f"| determinations/s through the API ({args.connections} connections, {args.server_workers} server workers, {args.seconds:.0f} s) | {api_rate:.0f}/s | >= 500/s |"
    )
    lines.append(f"| determinations/s in process (`evaluate`, same run) | {local_rate:.0f}/s | |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with args.append.open("a", encoding="utf-8") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
