"""Build the one-folder desktop bundle, check it offline, measure it, pack it.

    .venv/bin/python installer/build.py              # build + checks + tarball
    .venv/bin/python installer/build.py --stand-in   # stand-ins for a missing demo model/study
    .venv/bin/python installer/build.py --skip-build # re-run the checks on dist/cspine

Steps: PyInstaller (``installer/cspine.spec``) → ``dist/cspine/``; the platform files are added
(``install.sh``, ``uninstall.sh``, ``share/`` with the menu entry and icons); then, with a fresh
empty HOME (a first start): the bundle's ``--self-test`` in a network namespace without
interfaces (``unshare -n``, when this machine allows it; the self-test's own connect guard runs
in any case), start times of ``--version``, a check that the install folder was not written to,
that no TensorFlow is inside, an install/uninstall round trip; finally
``dist/cspine-<version>-linux-<arch>.tar.gz``. Numbers go to ``dist/cspine-build-report.json``.
Exit code 0 only when every check passed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DIST = ROOT / "dist"
APP = DIST / "cspine"
WORK = ROOT / "build" / "pyinstaller"
STAGED_ASSETS = ROOT / "build" / "installer-assets"
REPORT = DIST / "cspine-build-report.json"
FORBIDDEN = ("tensorflow", "keras", "tf2onnx", "tensorboard", "model_training", "torch")


def version() -> str:
    sys.path.insert(0, str(ROOT))
    from cspine_desktop import __version__

    return __version__


def run_pyinstaller(assets: Path, variant: str) -> float:
    env = {**os.environ, "CSPINE_BUILD_ASSETS": str(assets), "CSPINE_BUILD_VARIANT": variant}
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(HERE / "cspine.spec"),
        "--noconfirm",
        "--log-level=WARN",
        f"--distpath={DIST}",
        f"--workpath={WORK}",
    ]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    return time.perf_counter() - t0


def add_platform_files(app: Path) -> None:
    """install.sh / uninstall.sh next to the executable, the menu entry and icons in share/."""
    if sys.platform != "linux":
        return
    for script in ("install.sh", "uninstall.sh"):
        shutil.copy2(HERE / "linux" / script, app / script)
        (app / script).chmod(0o755)
    share = app / "share"
    share.mkdir(exist_ok=True)
    shutil.copy2(HERE / "linux" / "cspine.desktop", share / "cspine.desktop")
    for ext in ("png", "svg"):
        shutil.copy2(ROOT / "assets" / "icons" / f"cspine.{ext}", share / f"cspine.{ext}")


# --------------------------------------------------------------------------- measurements
def folder_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files), len(files)


def biggest_parts(app: Path, n: int = 12) -> list[tuple[str, int]]:
    """The largest top-level entries of ``_internal`` (MB-relevant parts of the bundle)."""
    inner = app / "_internal"
    sizes = []
    for entry in inner.iterdir():
        size = folder_size(entry)[0] if entry.is_dir() else entry.stat().st_size
        sizes.append((entry.name, size))
    return sorted(sizes, key=lambda x: -x[1])[:n]


def forbidden_content(app: Path) -> list[str]:
    found = []
    for p in (app / "_internal").rglob("*"):
        head = p.name.split(".")[0].lower()
        if head in FORBIDDEN or p.name.lower().startswith(("libtensorflow", "_pywrap_tensorflow")):
            found.append(str(p.relative_to(app)))
    return sorted(found)[:20]


def snapshot(app: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(app)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(app.rglob("*"))
    }


def drop_page_cache() -> bool:
    """Cold start = files not in the page cache (needs root and a writable /proc/sys)."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def can_unshare_net() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def fresh_env(home: Path) -> dict[str, str]:
    """An environment with an empty HOME and nothing of the developer's settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CSPINE_", "XDG_", "PYTHON", "QT_")) and k != "VIRTUAL_ENV"
    }
    env.update({"HOME": str(home), "QT_QPA_PLATFORM": "offscreen"})
    return env


def timed_run(
    cmd: list[str], env: dict[str, str], offline: bool
) -> tuple[float, subprocess.CompletedProcess]:
    full = ["unshare", "-n", *cmd] if offline else cmd
    t0 = time.perf_counter()
    proc = subprocess.run(full, env=env, capture_output=True, text=True, timeout=900)
    return time.perf_counter() - t0, proc


def install_round_trip(app: Path) -> tuple[bool, str]:
    """install.sh into a temporary HOME, then uninstall.sh (data kept), as a user would."""
    if sys.platform != "linux":
        return True, "not on Linux"
    with tempfile.TemporaryDirectory(prefix="cspine-home-") as tmp:
        home = Path(tmp)
        env = fresh_env(home)
        subprocess.run([str(app / "install.sh")], env=env, check=True, capture_output=True)
        installed = home / ".local" / "opt" / "cspine"
        desktop = home / ".local" / "share" / "applications" / "cspine.desktop"
        ok = (installed / "cspine").is_file() and desktop.is_file()
        ok &= f"Exec={installed}/cspine" in desktop.read_text()
        proc = subprocess.run(
            [str(home / ".local" / "bin" / "cspine"), "--version"], env=env, capture_output=True
        )
        ok &= proc.returncode == 0
        data = home / ".local" / "share" / "cspine"
        data.mkdir(parents=True, exist_ok=True)
        (data / "keep.txt").write_text("user data")
        subprocess.run(
            [str(installed / "uninstall.sh"), "--yes"], env=env, check=True, capture_output=True
        )
        ok &= not installed.exists() and not desktop.exists() and (data / "keep.txt").exists()
        return ok, "install.sh + uninstall.sh in a fresh HOME: app removed, data kept"


def make_tarball(app: Path, ver: str) -> Path:
    arch = platform.machine().lower()
    out = DIST / f"cspine-{ver}-linux-{arch}.tar.gz"
    subprocess.run(["tar", "-czf", str(out), "-C", str(app.parent), app.name], check=True)
    return out


def machine() -> dict:
    """Where the numbers were measured (the load average says how shared the CPU was)."""
    info = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    if hasattr(os, "getloadavg"):
        info["load_average_1m"] = round(os.getloadavg()[0], 1)
    return info


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--stand-in", action="store_true", help="stand-ins for a missing model/study")
    ap.add_argument("--skip-build", action="store_true", help="check the existing dist/cspine")
    ap.add_argument("--variant", choices=("cpu", "gpu"), default="cpu")
    ap.add_argument("--no-tarball", action="store_true")
    ap.add_argument("--strict", action="store_true", help="self-test --strict (verdicts = truth)")
    args = ap.parse_args(argv)
    ver = version()
    report: dict = {"version": ver, "variant": args.variant, "checks": {}}
    report["machine"] = machine()

    assets = ROOT / "assets"
    missing = [
        p
        for p in ("models/cspine-demo/model_card.json", "demo/demo-study.zip")
        if not (assets / p).is_file()
    ]
    if missing and not args.skip_build:
        if not args.stand_in:
            print(f"build.py: {', '.join(missing)} not in assets/; add them or use --stand-in")
            return 2
        sys.path.insert(0, str(HERE))
        from stand_in import stage_assets

        report["assets"] = stage_assets(STAGED_ASSETS, assets)
        assets = STAGED_ASSETS
        print(f"stand-in assets in {assets}: {report['assets']}", flush=True)
    else:
        report["assets"] = {"model": "real", "study": "real"}

    if not args.skip_build:
        report["build_s"] = round(run_pyinstaller(assets, args.variant), 1)
        add_platform_files(APP)
    exe = APP / ("cspine.exe" if sys.platform == "win32" else "cspine")
    if not exe.exists():
        print(f"build.py: {exe} does not exist")
        return 1

    size, n_files = folder_size(APP)
    report["bundle_bytes"], report["bundle_files"] = size, n_files
    report["biggest_parts_mb"] = {k: round(v / 2**20, 1) for k, v in biggest_parts(APP)}
    bad = forbidden_content(APP)
    report["checks"]["no training stack inside"] = {"ok": not bad, "detail": bad}

    before = snapshot(APP)
    offline = can_unshare_net()
    report["offline_method"] = "unshare -n + connect guard" if offline else "connect guard only"
    with tempfile.TemporaryDirectory(prefix="cspine-firststart-") as tmp:
        env = fresh_env(Path(tmp))
        report["cold_cache"] = drop_page_cache()
        t, proc = timed_run([str(exe), "--version"], env, offline)
        report["start_version_cold_s"] = round(t, 2)
        warm = [timed_run([str(exe), "--version"], env, offline)[0] for _ in range(3)]
        report["start_version_warm_s"] = round(min(warm), 2)
        report["checks"]["--version runs"] = {"ok": proc.returncode == 0, "detail": proc.stdout}

        drop_page_cache()
        t, proc = timed_run([str(exe), "--self-test", "--json"], env, offline)
        report["self_test_cold_wall_s"] = round(t, 2)
        try:
            st = json.loads(proc.stdout)
        except json.JSONDecodeError:
            st = {"passed": False, "stdout": proc.stdout[-2000:], "stderr": proc.stderr[-4000:]}
        report["self_test"] = st
        ok = proc.returncode == 0 and st.get("passed", False)
        report["checks"]["self-test offline (first start)"] = {"ok": ok, "detail": proc.returncode}
        t, proc = timed_run(
            [str(exe), "--self-test", *(["--strict"] if args.strict else [])], env, offline
        )
        report["self_test_warm_wall_s"] = round(t, 2)
        report["self_test_text"] = proc.stdout
        report["checks"]["self-test offline (second start)"] = {
            "ok": proc.returncode == 0,
            "detail": proc.returncode,
        }
        home_files = sorted(str(p.relative_to(tmp)) for p in Path(tmp).rglob("*") if p.is_file())
        report["files_written_in_fresh_home"] = home_files[:50]

    after = snapshot(APP)
    changed = sorted(set(before.items()) ^ set(after.items()))
    report["checks"]["install folder untouched"] = {"ok": not changed, "detail": changed[:20]}

    ok, detail = install_round_trip(APP)
    report["checks"]["install/uninstall round trip"] = {"ok": ok, "detail": detail}

    if not args.no_tarball and sys.platform == "linux":
        t0 = time.perf_counter()
        tarball = make_tarball(APP, ver)
        report["tarball"] = tarball.name
        report["tarball_bytes"] = tarball.stat().st_size
        report["tarball_s"] = round(time.perf_counter() - t0, 1)

    report["machine"]["load_average_1m_end"] = machine().get("load_average_1m")
    report["passed"] = all(c["ok"] for c in report["checks"].values())
    REPORT.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(summary(report))
    return 0 if report["passed"] else 1


def summary(r: dict) -> str:
    lines = [
        f"cspine {r['version']} ({r['variant']}) bundle: {r['bundle_bytes'] / 2**20:.0f} MB in "
        f"{r['bundle_files']} files" + (f", built in {r['build_s']} s" if "build_s" in r else ""),
        f"assets: model {r['assets']['model']}, demo study {r['assets']['study']}",
        f"start (--version): first {r['start_version_cold_s']} s "
        f"({'page cache dropped' if r['cold_cache'] else 'page cache NOT dropped'}), "
        f"warm {r['start_version_warm_s']} s",
        f"self-test ({r['offline_method']}): first {r['self_test_cold_wall_s']} s, "
        f"second {r['self_test_warm_wall_s']} s",
    ]
    if "tarball" in r:
        lines.append(f"tarball: {r['tarball']} {r['tarball_bytes'] / 2**20:.0f} MB")
    for name, c in r["checks"].items():
        lines.append(
            f"  [{'ok  ' if c['ok'] else 'FAIL'}] {name}" + ("" if c["ok"] else f": {c['detail']}")
        )
    lines.append(r.get("self_test_text", ""))
    lines.append(f"report: {REPORT}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
