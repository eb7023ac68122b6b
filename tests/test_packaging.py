"""The wheel a user installs holds every package of the source tree (a subpackage left out of pyproject's list
installs fine from a checkout and breaks only from a wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


PACKAGES = ("listener", "detectors", "connectors", "crisiswatch")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # from a clean copy: setuptools reuses a build/ folder left in the tree, which would hide a missing package
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                                              "__pycache__", ".pytest_cache", ".hypothesis"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp), str(src)],
                   check=True, capture_output=True, timeout=300)
    (built,) = tmp.glob("crisiswatch-*.whl")
    return built


def test_the_wheel_holds_every_package_and_the_command(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    packages = sorted(str(p.parent.relative_to(ROOT)) for top in PACKAGES for p in (ROOT / top).rglob("__init__.py"))
    assert "listener/notifiers" in packages
    for package in packages:
        assert f"{package}/__init__.py" in names, package
    modules = sorted(str(p.relative_to(ROOT)) for top in PACKAGES for p in (ROOT / top).rglob("*.py"))
    assert [m for m in modules if m not in names] == []
    assert [f"{top}/py.typed" for top in PACKAGES if f"{top}/py.typed" not in names] == []
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "crisiswatch = listener.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_wheel_installs_in_a_fresh_virtualenv_and_runs_outside_the_checkout(wheel: Path,
                                                                                 tmp_path: Path) -> None:
    """What `pip install crisiswatch` gives a user: the command, `python -m crisiswatch`, `--version` and the
    demo, run from a folder that is not the checkout (nothing of the source tree on the path)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    py, command = venv / "bin" / "python", venv / "bin" / "crisiswatch"
    # The dependencies come from this environment's site-packages (a path line in a .pth: its own .pth files,
    # the editable install of the checkout among them, are not read); the wheel itself is installed fresh.
    ours = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    theirs = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    (Path(theirs) / "dependencies.pth").write_text(ours + "\n")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True,
                   timeout=300)
    run = tmp_path / "elsewhere"
    run.mkdir()

    def ok(*args: str | Path, timeout: float = 60) -> str:
        proc = subprocess.run([str(a) for a in args], cwd=run, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        return proc.stdout

    where = ok(py, "-c", "import listener, crisiswatch; print(listener.__file__, crisiswatch.__version__)")
    assert where.startswith(theirs) and where.split()[1] == "0.1.0", where
    assert ok(command, "--version").strip() == "crisiswatch 0.1.0"
    assert "demo" in ok(command, "--help") and "demo" in ok(py, "-m", "crisiswatch", "--help")
    demo = ok(command, "demo", timeout=180)
    assert "CRISIS TRIGGERED | acme" in demo and "Crisis detected for acme" in demo


def test_the_image_copies_every_package_the_wheel_needs() -> None:
    copied = [line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")]
    assert [p for p in PACKAGES if p not in copied] == []


def test_kafka_python_checks_records_with_the_compiled_crc32c() -> None:
    # a core dependency because kafka-python's pure-Python CRC32C was 13% of the listener's time
    from kafka.record import util
    from kafka.record._crc32c import crc as pure_python

    assert util.crc32c_c is not None
    assert util._crc32c is not pure_python
    assert util.calc_crc32c(memoryview(b"123456789")) == 0xE3069283  # the CRC-32C check value
