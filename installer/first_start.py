"""First start of a built bundle, as a clinic PC sees it: empty HOME, no network, cold cache.

Used by ``installer/build.py``. Every run happens in a network namespace without interfaces
(``unshare -n``) when the machine allows it; ``network_audit`` additionally traces the
process's ``connect`` calls (strace), so an attempt from native code, which the self-test's
Python guard cannot see, is caught too. Times are wall-clock seconds from process start.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

# where platformdirs puts cspine's per-user files on Linux (relative to HOME)
ALLOWED_HOME_DIRS = (".local/share/cspine", ".cache/cspine", ".local/state/cspine")
_INET_CONNECT = re.compile(r"connect\(\d+, \{sa_family=AF_INET6?, (?P<addr>[^}]*)\}")
_LOOPBACK = re.compile(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"')


def can_unshare_net() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def drop_page_cache() -> bool:
    """Cold start = the bundle's files not in the page cache (needs root, writable /proc/sys)."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def fresh_env(home: Path) -> dict[str, str]:
    """An environment with an empty HOME and none of the developer's settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CSPINE_", "XDG_", "PYTHON", "QT_", "ORT_")) and k != "VIRTUAL_ENV"
    }
    env.update({"HOME": str(home), "QT_QPA_PLATFORM": "offscreen"})
    return env


def timed_run(
    cmd: list[str], env: dict[str, str], offline: bool, timeout: float = 900
) -> tuple[float, subprocess.CompletedProcess]:
    full = ["unshare", "-n", *cmd] if offline else cmd
    t0 = time.perf_counter()
    proc = subprocess.run(full, env=env, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - t0, proc


def self_test(exe: Path, env: dict[str, str], offline: bool, *extra: str) -> tuple[float, dict]:
    """(wall seconds, the self-test's JSON report) — report["passed"] False if it broke."""
    t, proc = timed_run([str(exe), "--self-test", "--json", *extra], env, offline)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report = {"passed": False, "stdout": proc.stdout[-2000:], "stderr": proc.stderr[-4000:]}
    report["exit_code"] = proc.returncode
    report["passed"] = bool(report.get("passed")) and proc.returncode == 0
    return t, report


def network_audit(exe: Path, env: dict[str, str], offline: bool) -> tuple[bool, list[str]]:
    """Run the self-test under strace; (no inet connect attempted, the attempts seen).

    Loopback connects are allowed. Without strace the audit cannot run: (False, [reason]).
    """
    if not shutil.which("strace"):
        return False, ["strace is not installed: native connects were not audited"]
    with tempfile.TemporaryDirectory(prefix="cspine-strace-") as tmp:
        log = Path(tmp) / "connect.log"
        cmd = ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect", "-o", str(log)]
        timed_run([*cmd, str(exe), "--self-test", "--no-exports"], env, offline)
        attempts = [
            m.group("addr")
            for line in log.read_text(errors="replace").splitlines()
            if (m := _INET_CONNECT.search(line)) and not _LOOPBACK.search(line)
        ]
    return not attempts, sorted(set(attempts))


def gui_first_window(exe: Path, env: dict[str, str], offline: bool, timeout: float = 120) -> dict:
    """Seconds from starting the app (no arguments, as a double-click does) until its first
    window is mapped on a virtual X server (Xvfb). Needs Xvfb and xdotool; else a reason."""
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        return {"ok": False, "detail": "Xvfb/xdotool not installed: GUI start not measured"}
    display = f":{90 + os.getpid() % 9}"
    xvfb = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    app = None
    try:
        x_env = {**env, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
        if not _wait(lambda: _xdotool(["getdisplaygeometry"], x_env) is not None, 10):
            return {"ok": False, "detail": "Xvfb did not start"}
        cmd = ["unshare", "-n", str(exe)] if offline else [str(exe)]
        t0 = time.perf_counter()
        app = subprocess.Popen(cmd, env=x_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        shown = _wait(
            lambda: (
                app.poll() is not None
                or bool(_xdotool(["search", "--onlyvisible", "--name", "."], x_env))
            ),
            timeout,
        )
        seconds = round(time.perf_counter() - t0, 2)
        if app.poll() is not None:
            err = app.stderr.read().decode(errors="replace")[-1500:] if app.stderr else ""
            return {"ok": False, "detail": f"the app exited ({app.returncode}): {err}"}
        if not shown:
            return {"ok": False, "detail": f"no window within {timeout} s"}
        title = _xdotool(["search", "--onlyvisible", "--name", ".", "getwindowname"], x_env)
        return {"ok": True, "seconds": seconds, "window": (title or "").strip()}
    finally:
        for proc in (app, xvfb):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _xdotool(args: list[str], env: dict[str, str]) -> str | None:
    proc = subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def _wait(condition, timeout: float, step: float = 0.05) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if condition():
            return True
        time.sleep(step)
    return False


def files_outside_cspine_dirs(home: Path) -> list[str]:
    """Files the app wrote in HOME outside its own platformdirs folders (should be none)."""
    out = []
    for p in home.rglob("*"):
        rel = p.relative_to(home).as_posix()
        if p.is_file() and not any(rel.startswith(d + "/") for d in ALLOWED_HOME_DIRS):
            out.append(rel)
    return sorted(out)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every entry, to prove the install folder is never written to."""
    return {
        str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }
