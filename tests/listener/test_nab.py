from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from detectors import DetectorConfig
from detectors.volume import VolumeConfig
from listener.nab import bucket_seconds, read_series, run_nab

START = datetime(2015, 2, 26, 21, 42, 53)
ROWS = 5 * 288  # five days of five-minute buckets


def write_series(path: Path, values: list[int]) -> list[str]:
    stamps = [(START + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(len(values))]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["timestamp", "value"])
        w.writerows(zip(stamps, values))
    return stamps


def read_out(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture()
def nab_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    quiet = [int(n) for n in rng.poisson(20, ROWS)]
    spiky = quiet.copy()
    for i in range(4 * 288, 4 * 288 + 4):
        spiky[i] += 400
    data = tmp_path / "nab"
    write_series(data / "realTweets" / "Twitter_volume_QUIET.csv", quiet)
    write_series(data / "realTweets" / "Twitter_volume_SPIKY.csv", spiky)
    (data / "labels").mkdir()
    (data / "labels" / "combined_windows_realTweets.json").write_text("not read")
    return data


def test_writes_one_file_per_series_with_the_input_timestamps(nab_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    counts = run_nab(nab_dir, out)
    assert sorted(counts) == ["Twitter_volume_QUIET.csv", "Twitter_volume_SPIKY.csv"]
    assert sorted(p.name for p in out.iterdir()) == sorted(counts)
    for name, n in counts.items():
        rows = read_out(out / name)
        with (nab_dir / "realTweets" / name).open(newline="") as f:
            stamps = [r["timestamp"] for r in csv.DictReader(f)]
        assert list(rows[0]) == ["timestamp", "alert"]
        assert [r["timestamp"] for r in rows] == stamps
        assert {r["alert"] for r in rows} <= {"0", "1"}
        assert sum(r["alert"] == "1" for r in rows) == n
    assert counts["Twitter_volume_QUIET.csv"] == 0
    spiky = read_out(out / "Twitter_volume_SPIKY.csv")
    assert [i for i, r in enumerate(spiky) if r["alert"] == "1"] == [4 * 288]


def test_same_input_same_files(nab_dir: Path, tmp_path: Path) -> None:
    run_nab(nab_dir, tmp_path / "a")
    run_nab(nab_dir, tmp_path / "b")
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()


def test_a_folder_without_realtweets_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no realTweets/\*\.csv under .*pass the NAB data folder"):
        run_nab(tmp_path, tmp_path / "out")


def test_bad_rows_are_named(tmp_path: Path) -> None:
    path = tmp_path / "realTweets" / "x.csv"
    write_series(path, [1, 2, 3])
    path.write_text(path.read_text() + "2015-02-27 00:00:00,-4\n")
    with pytest.raises(ValueError, match=r"x\.csv:5: value '-4' is not a count"):
        run_nab(tmp_path, tmp_path / "out")
    path.write_text("time,count\n2015-02-27 00:00:00,1\n")
    with pytest.raises(ValueError, match="needs the columns timestamp,value"):
        read_series(path)


def test_timestamps_are_utc_and_the_bucket_width_comes_from_the_data(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    stamps = write_series(path, [0, 1, 2, 3])
    got, seconds, counts = read_series(path)
    assert got == stamps and counts == [0, 1, 2, 3]
    assert seconds[0] == 1424986973  # 2015-02-26T21:42:53Z
    assert bucket_seconds(seconds) == 300


def test_nab_runs_the_volume_test_the_service_runs() -> None:
    """``crisiswatch nab`` and each brand's volume notices use one configuration: the detector's window,
    significance level, warm-up and cold-start ratio (the NAB-tuned defaults of VolumeConfig are those)."""
    assert DetectorConfig().volume() == VolumeConfig()
    changed = DetectorConfig(window_minutes=15, p_value=1e-4).volume()
    assert (changed.window_minutes, changed.p_value) == (15, 1e-4)


def test_the_benchmark_script_says_a_wrong_data_folder_in_one_line(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from tests.benchmark_module import load

    bench = load("nab")
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--data", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "no realTweets/*.csv under" in err and "Traceback" not in err
