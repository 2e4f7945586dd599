"""What every route and page needs: the law pack, the control plane (audited as api or web), today."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import Connection

from sharewise.audit.trail import AuditTrail
from sharewise.domain.events import AuditEvent
from sharewise.policy.model import LawPack
from sharewise.wiring import Control


class SourcedTrail(AuditTrail):
    """The same audit trail, recording the interface (api or web) the action came through."""

    def __init__(self, trail: AuditTrail, source: str) -> None:
        super().__init__(trail.clock, trail.signer, trail.checkpoint_every)
        self.source = source

    def append(self, conn: Connection, event: AuditEvent) -> int:
        if event.source == "cli":  # the services' default: this action came through this interface
            event = replace(event, source=self.source)
        return super().append(conn, event)


def sourced(control: Control, source: str) -> Control:
    """The control plane whose audit records name the interface (its sink writes through the same trail)."""
    from sharewise.audit.sink import StoreAuditSink

    trail = SourcedTrail(control.trail, source)
    return Control(control.store, trail, StoreAuditSink(control.store, trail), control.settings)


@dataclass
class AppContext:
    """The dependencies the app factory was given."""

    law: LawPack
    api: Control  # audited with source "api"
    web: Control  # audited with source "web"
    today: Callable[[], dt.date]
