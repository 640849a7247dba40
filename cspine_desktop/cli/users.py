"""``cspine users``: manage local accounts from the command line (no GUI needed).

The command line runs as the operating-system user who owns the data folder, so it acts as an
administrator. Passwords are read from standard input (``--password-stdin``, first line) or asked
for twice on a terminal; they are never accepted as arguments (those end up in shell history).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from ..errors import CspineInputError
from ..services import Services
from ..settings import Settings
from ..store import ROLES, iso_utc


def say(*parts: object, file=None) -> None:
    """Write a line for the person at the terminal (stdout unless ``file`` is given)."""
    (file or sys.stdout).write(" ".join(str(p) for p in parts) + "\n")


def local_actor() -> str:
    """How the audit trail names the person at the command line: their OS account."""
    try:
        return "os:" + getpass.getuser()
    except Exception:  # no user name in the environment (some containers)
        return "os:unknown"


def _services(settings: Settings) -> Services:
    services = Services.open(settings, start_jobs=False)
    services.users.local_actor = local_actor()
    return services


def read_password(args: argparse.Namespace, prompt: str = "Password: ") -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if password.endswith("\r"):
            password = password[:-1]
        if not password:
            raise CspineInputError("No password on standard input.")
        return password
    if not sys.stdin.isatty():
        raise CspineInputError("Use --password-stdin to pass a password without a terminal.")
    first = getpass.getpass(prompt)
    if getpass.getpass("Repeat: ") != first:
        raise CspineInputError("The two passwords differ.")
    return first


def _add(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password(args)
    with _services(settings) as sv:
        user = sv.users.add_user(args.name, password, args.role, full_name=args.full_name or "")
    say(f"Added {user.role} '{user.name}'.")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    with _services(settings) as sv:
        users = sv.users.list_users()
        first = sv.users.first_run()
    if args.json:
        say(json.dumps([u.to_dict() for u in users], indent=2, ensure_ascii=False))
        return 0
    if first:
        say("No users yet. Create the first administrator with:")
        say("  cspine users add NAME --role admin --password-stdin")
        return 0
    say(f"{'NAME':24} {'ROLE':12} {'STATUS':9} LAST SIGN-IN (UTC)")
    for u in users:
        say(f"{u.name:24} {u.role:12} {u.status:9} {iso_utc(u.last_login_at) or '-'}")
    return 0


def _simple(action: str):
    def run(args: argparse.Namespace, settings: Settings) -> int:
        with _services(settings) as sv:
            if action == "approve":
                user = sv.users.approve(args.name, role=args.role)
            elif action == "disable":
                user = sv.users.disable(args.name)
            elif action == "enable":
                user = sv.users.enable(args.name)
            elif action == "set-role":
                user = sv.users.set_role(args.name, args.role)
            elif action == "unlock":
                user = sv.users.get(args.name)
                sv.users.throttle.success(user.name)
            else:  # pragma: no cover
                raise AssertionError(action)
        say(f"User '{user.name}': role {user.role}, {user.status}.")
        return 0

    return run


def _reset(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password(args, "New password: ")
    with _services(settings) as sv:
        user = sv.users.reset_password(args.name, password)
    say(f"Password of '{user.name}' reset; its API tokens were revoked.")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("users", help="manage local user accounts")
    sub = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="add an active account")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="radiologist")
    add.add_argument("--full-name", default="")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(func=_add)

    ls = sub.add_parser("list", help="list accounts")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)

    for action, text in (
        ("approve", "approve a pending sign-up"),
        ("disable", "disable an account (revokes its tokens)"),
        ("enable", "re-enable a disabled account"),
        ("unlock", "clear the failed-sign-in lock of an account"),
    ):
        q = sub.add_parser(action, help=text)
        q.add_argument("name")
        if action == "approve":
            q.add_argument("--role", choices=ROLES, default=None)
        q.set_defaults(func=_simple(action))

    sr = sub.add_parser("set-role", help="change an account's role")
    sr.add_argument("name")
    sr.add_argument("role", choices=ROLES)
    sr.set_defaults(func=_simple("set-role"))

    rp = sub.add_parser("reset-password", help="set a new password for an account")
    rp.add_argument("name")
    rp.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    rp.set_defaults(func=_reset)
