"""``cspine admin``: backup, restore, the audit trail and a store check."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import datetime, timezone

from ..errors import BackupError, CspineInputError
from ..services import Services
from ..services.audit import write_csv
from ..settings import Settings
from ..store import Store, backup, restore, verify_backup
from .users import local_actor, say


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds from ``2024-05-01``, ``2024-05-01T13:00`` (UTC unless an offset is given)
    or a relative age such as ``30m``, ``24h``, ``7d``."""
    now = time.time() if now is None else now
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if m:
        factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
        return now - float(m.group(1)) * factor
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CspineInputError(
            f"Cannot read the time '{text}'; use e.g. 2024-05-01, 2024-05-01T13:00 or 7d."
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    with Services.open(settings, start_jobs=False) as sv:
        try:
            manifest = backup(sv.store, args.dest)
        except BackupError as err:
            sv.audit.record(
                "backup", outcome="failure", user=local_actor(), detail={"error": str(err)}
            )
            raise
        sv.audit.record(
            "backup",
            user=local_actor(),
            detail={"dest": str(args.dest), "studies": manifest["studies"]},
        )
    say(
        f"Backup written to {args.dest}: {manifest['studies']} studies, "
        f"{len(manifest['files'])} files."
    )
    return 0


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    manifest = verify_backup(args.src)
    store = Store.open(settings.data_dir, recover=False)
    alone = store.alone_at_open
    store.close()
    if not alone:
        raise BackupError("cspine is running (GUI or server) on this data folder; stop it first.")
    if not args.yes:
        if not sys.stdin.isatty():
            raise CspineInputError("Restoring replaces the current data; confirm with --yes.")
        answer = input(
            f"Replace the data in {settings.data_dir} with the backup of "
            f"{manifest['created']}? [y/N] "
        )
        if answer.strip().lower() not in {"y", "yes"}:
            say("Nothing restored.")
            return 0
    aside = restore(args.src, settings.data_dir)
    with Services.open(settings, start_jobs=False) as sv:
        sv.audit.record(
            "restore",
            user=local_actor(),
            detail={
                "src": str(args.src),
                "created": manifest["created"],
                "previous_data": str(aside),
            },
        )
    say(
        f"Restored {manifest['studies']} studies from {args.src}. "
        f"The previous data are kept in {aside}."
    )
    return 0


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until) if args.until else None
    with Services.open(settings, start_jobs=False) as sv:
        events = sv.audit.query(
            since=since, until=until, user=args.user, action=args.action, limit=args.limit
        )
    if args.csv:
        write_csv(events, sys.stdout)
        return 0
    if args.json:
        say(json.dumps([e.to_dict() for e in events], indent=2, ensure_ascii=False))
        return 0
    for e in events:
        where = e.address or "local"
        what = e.study_uid or ""
        patient = f" patient={e.patient_id}" if e.patient_id else ""
        detail = "" if not e.detail else " " + json.dumps(e.detail, ensure_ascii=False)
        say(
            f"{e.time_utc} {e.action:18} {e.outcome:7} user={e.user_name or '-'} "
            f"from={where} {what}{patient}{detail}".rstrip()
        )
    if not events:
        say("No audit events match.", file=sys.stderr)
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    with Services.open(settings, start_jobs=False) as sv:
        result = sv.store.integrity_check()
        version = sv.store.schema_version
        studies = sv.store.studies.count()
    say(
        f"database: {sv.store.db_path}\nschema version: {version}\nstudies: {studies}\n"
        f"integrity: {result}"
    )
    return 0 if result == "ok" else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("admin", help="backup, restore, audit trail, store check")
    sub = p.add_subparsers(dest="admin_command", metavar="ACTION", required=True)

    b = sub.add_parser("backup", help="write a backup (database snapshot + study files)")
    b.add_argument("dest", help="new folder for the backup")
    b.set_defaults(func=_backup)

    r = sub.add_parser("restore", help="replace the data with a backup (stop the app first)")
    r.add_argument("src", help="backup folder written by 'cspine admin backup'")
    r.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    r.set_defaults(func=_restore)

    a = sub.add_parser("audit", help="show or export the audit trail")
    a.add_argument("--since", help="UTC date/time (2024-05-01, 2024-05-01T13:00) or age (7d)")
    a.add_argument("--until", help="UTC date/time or age, exclusive")
    a.add_argument("--user", help="only events of this user")
    a.add_argument("--action", help="only this action (login, study_imported, ...)")
    a.add_argument("--limit", type=int, default=None)
    fmt = a.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV on standard output")
    fmt.add_argument("--json", action="store_true", help="JSON on standard output")
    a.set_defaults(func=_audit)

    c = sub.add_parser("check", help="check the database (PRAGMA integrity_check)")
    c.set_defaults(func=_check)
