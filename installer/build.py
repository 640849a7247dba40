"""Build the one-folder desktop bundle, check it offline, measure it, pack it.

    .venv/bin/python installer/build.py              # build + checks + tarball
    .venv/bin/python installer/build.py --stand-in   # stand-ins for a missing demo model/study
    .venv/bin/python installer/build.py --skip-build # re-run the checks on dist/cspine

Steps: PyInstaller (``installer/cspine.spec``) → ``dist/cspine/``; the platform files are added
(``install.sh``, ``uninstall.sh``, ``share/`` with the menu entry and icons); then, with a fresh
empty HOME (a first start): the bundle's ``--self-test`` in a network namespace without
interfaces (``unshare -n``, when this machine allows it; the self-test's own connect guard runs
in any case), start times of ``--version``, a check that the install folder was not written to,
that no TensorFlow is inside, that OpenVINO runs both model stages from the bundle (``cspine
bench`` of ONNX Runtime and OpenVINO int8; the report gives OpenVINO's share of the size), an
install/uninstall round trip; finally
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
sys.path.insert(0, str(HERE))
import first_start as fs  # noqa: E402

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


def openvino_size(app: Path) -> int:
    """Bytes the OpenVINO runtime adds to the bundle (its package folder and libraries)."""
    inner = app / "_internal"
    files = [p for p in inner.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files if _is_openvino(p.relative_to(inner)))


def _is_openvino(rel: Path) -> bool:
    return rel.parts[0] in ("openvino", "openvino.libs") or rel.name.startswith(
        ("libopenvino", "libtbb", "libhwloc")
    )


def openvino_check(exe: Path, env: dict[str, str], offline: bool) -> dict:
    """``cspine bench`` of the shipped model with ONNX Runtime and OpenVINO int8, both stages,
    from the built folder: OpenVINO loads its CPU plugin and ONNX reader and runs."""
    cmd = [str(exe), "bench", "--json", "--only", "onnx-int8,openvino-int8"]
    cmd += ["--slices", "40", "--size", "128"]
    t, proc = fs.timed_run(cmd, env, offline)
    out: dict = {"wall_s": round(t, 1), "ok": False}
    try:
        runs = json.loads(proc.stdout)["runs"]
    except (ValueError, KeyError):
        out["detail"] = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return out
    ov_runs = [r for r in runs if r["key"] == "openvino-int8"]
    out["runs"] = {
        f"stage {r['stage']} {r['label']}": r["error"] or f"{r['ms_per_slice']:.1f} ms/slice"
        for r in runs
    }
    bad = [r["error"] for r in ov_runs if r["error"]]
    stages = {r["stage"] for r in ov_runs}
    out["ok"] = proc.returncode == 0 and not bad and stages == {1, 2}
    if not out["ok"]:
        out["detail"] = "; ".join(bad) or f"stages run: {sorted(stages)}"
    return out


def forbidden_content(app: Path) -> list[str]:
    found = []
    for p in (app / "_internal").rglob("*"):
        head = p.name.split(".")[0].lower()
        if head in FORBIDDEN or p.name.lower().startswith(("libtensorflow", "_pywrap_tensorflow")):
            found.append(str(p.relative_to(app)))
    return sorted(found)[:20]


def install_round_trip(app: Path) -> tuple[bool, str]:
    """install.sh into a temporary HOME, then uninstall.sh (data kept), as a user would."""
    if sys.platform != "linux":
        return True, "not on Linux"
    with tempfile.TemporaryDirectory(prefix="cspine-home-") as tmp:
        home = Path(tmp)
        env = fs.fresh_env(home)
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


def shipped_assets(app: Path) -> dict[str, str]:
    """What the bundle carries: the demo model's name/version and the demo study's origin."""
    inner = app / "_internal" / "assets"
    card = inner / "models" / "cspine-demo" / "model_card.json"
    truth = inner / "demo" / "demo-study.json"
    out = {"model": "missing", "study": "missing"}
    if card.is_file():
        doc = json.loads(card.read_text(encoding="utf-8"))
        out["model"] = f"{doc.get('name')} {doc.get('version')}"
    if (inner / "demo" / "demo-study.zip").is_file():
        note = (
            json.loads(truth.read_text(encoding="utf-8")).get("note", "") if truth.is_file() else ""
        )
        out["study"] = "stand-in phantom study" if "stand-in" in note else "demo-study.zip"
    return out


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
        from stand_in import stage_assets

        print(f"stand-in assets: {stage_assets(STAGED_ASSETS, assets)}", flush=True)
        assets = STAGED_ASSETS

    if not args.skip_build:
        report["build_s"] = round(run_pyinstaller(assets, args.variant), 1)
        add_platform_files(APP)
    exe = APP / ("cspine.exe" if sys.platform == "win32" else "cspine")
    if not exe.exists():
        print(f"build.py: {exe} does not exist")
        return 1

    report["assets"] = shipped_assets(APP)
    size, n_files = folder_size(APP)
    report["bundle_bytes"], report["bundle_files"] = size, n_files
    report["biggest_parts_mb"] = {k: round(v / 2**20, 1) for k, v in biggest_parts(APP)}
    report["openvino_bytes"] = openvino_size(APP)
    bad = forbidden_content(APP)
    report["checks"]["no training stack inside"] = {"ok": not bad, "detail": bad}

    before = fs.snapshot(APP)
    offline = fs.can_unshare_net()
    report["offline_method"] = "unshare -n" if offline else "none (unshare -n not allowed here)"
    checks = report["checks"]
    with tempfile.TemporaryDirectory(prefix="cspine-firststart-") as tmp:
        home = Path(tmp)
        env = fs.fresh_env(home)
        # 1. the very first start: the self-test, page cache dropped, empty HOME
        report["cold_cache"] = fs.drop_page_cache()
        t, st = fs.self_test(exe, env, offline)
        report["self_test_first_wall_s"], report["self_test"] = round(t, 2), st
        checks["self-test offline, first start"] = {"ok": st["passed"], "detail": _failed(st)}
        # 2. the desktop app's first window (sign-in / first-run dialog), cold, then warm
        fs.drop_page_cache()
        report["gui_first_window_cold"] = fs.gui_first_window(exe, env, offline)
        report["gui_first_window_warm"] = fs.gui_first_window(exe, env, offline)
        checks["GUI opens a window offline"] = {
            "ok": report["gui_first_window_cold"]["ok"],
            "detail": report["gui_first_window_cold"].get("detail", ""),
        }
        # 3. command-line start, cold and warm
        fs.drop_page_cache()
        t, proc = fs.timed_run([str(exe), "--version"], env, offline)
        report["start_version_cold_s"] = round(t, 2)
        warm = [fs.timed_run([str(exe), "--version"], env, offline)[0] for _ in range(3)]
        report["start_version_warm_s"] = round(min(warm), 2)
        checks["--version"] = {"ok": proc.returncode == 0, "detail": proc.stdout.strip()}
        # 4. the self-test again (warm), as text for the log
        strict = ["--strict"] if args.strict else []
        t, st2 = fs.self_test(exe, env, offline, *strict)
        report["self_test_warm_wall_s"] = round(t, 2)
        checks["self-test offline, second start"] = {"ok": st2["passed"], "detail": _failed(st2)}
        # 4b. OpenVINO runs both stages of the shipped model offline, beside ONNX Runtime
        report["openvino"] = openvino_check(exe, env, offline)
        checks["OpenVINO runs both stages offline"] = {
            "ok": report["openvino"]["ok"],
            "detail": report["openvino"].get("detail", ""),
        }
        # 5. native network attempts (strace), and what was written in HOME
        ok, attempts = fs.network_audit(exe, env, offline)
        checks["no network attempt (strace connect audit)"] = {"ok": ok, "detail": attempts}
        stray = fs.files_outside_cspine_dirs(home)
        checks["nothing written outside cspine's data folders"] = {"ok": not stray, "detail": stray}
        report["files_written_in_fresh_home"] = sorted(
            p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()
        )[:40]

    changed = sorted(set(before.items()) ^ set(fs.snapshot(APP).items()))
    checks["install folder untouched"] = {"ok": not changed, "detail": changed[:20]}

    ok, detail = install_round_trip(APP)
    checks["install/uninstall round trip"] = {"ok": ok, "detail": detail}

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


def _failed(report: dict) -> str:
    bad = [f"{c['name']}: {c['detail']}" for c in report.get("checks", []) if not c.get("ok")]
    return "; ".join(bad) or report.get("stderr", "") or f"exit {report.get('exit_code')}"


def summary(r: dict) -> str:
    cold, warm = r["gui_first_window_cold"], r["gui_first_window_warm"]
    gui = (
        f"first window: {cold['seconds']} s cold, {warm.get('seconds', '-')} s warm "
        f"('{cold.get('window', '')}')"
        if cold.get("ok")
        else f"first window: not measured ({cold.get('detail')})"
    )
    lines = [
        f"cspine {r['version']} ({r['variant']}) bundle: {r['bundle_bytes'] / 2**20:.0f} MB in "
        f"{r['bundle_files']} files"
        + (f", built in {r['build_s']} s" if "build_s" in r else "")
        + f" (OpenVINO {r.get('openvino_bytes', 0) / 2**20:.0f} MB of it)",
        f"assets: model {r['assets']['model']}, demo study {r['assets']['study']}",
        f"network: {r['offline_method']}; page cache "
        f"{'dropped' if r['cold_cache'] else 'NOT dropped'} before cold starts",
        f"start: {gui}; --version {r['start_version_cold_s']} s cold, "
        f"{r['start_version_warm_s']} s warm",
        f"self-test: {r['self_test_first_wall_s']} s first start, "
        f"{r['self_test_warm_wall_s']} s second",
    ]
    if "tarball" in r:
        lines.append(f"tarball: {r['tarball']} {r['tarball_bytes'] / 2**20:.0f} MB")
    for name, c in r["checks"].items():
        lines.append(
            f"  [{'ok  ' if c['ok'] else 'FAIL'}] {name}" + ("" if c["ok"] else f": {c['detail']}")
        )
    lines.append(f"report: {REPORT}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
