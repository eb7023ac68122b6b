"""The wheel a user installs holds every package of the source tree (a subpackage left out of pyproject's list
installs fine from a checkout and breaks only from a wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_package_and_the_command(tmp_path: Path) -> None:
    # from a clean copy: setuptools reuses a build/ folder left in the tree, which would hide a missing package
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                                              "__pycache__", ".pytest_cache", ".hypothesis"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(src)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("crisiswatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = sorted(str(p.parent.relative_to(ROOT)) for top in ("listener", "detectors", "connectors")
                      for p in (ROOT / top).rglob("__init__.py"))
    assert "listener/notifiers" in packages
    for package in packages:
        assert f"{package}/__init__.py" in names, package
    modules = sorted(str(p.relative_to(ROOT)) for top in ("listener", "detectors", "connectors")
                     for p in (ROOT / top).rglob("*.py"))
    assert [m for m in modules if m not in names] == []
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "crisiswatch = listener.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_kafka_python_checks_records_with_the_compiled_crc32c() -> None:
    # a core dependency because kafka-python's pure-Python CRC32C was 13% of the listener's time
    from kafka.record import util
    from kafka.record._crc32c import crc as pure_python

    assert util.crc32c_c is not None
    assert util._crc32c is not pure_python
    assert util.calc_crc32c(memoryview(b"123456789")) == 0xE3069283  # the CRC-32C check value
