"""``symphony run``: output, exit codes, errors, resume — as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from symphony.conductor.run_cli import (
    EXIT_DATA,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
)
from symphony.workflow import Melody, save

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    p = tmp_path / "pit.key"
    p.write_text(bytes(range(32)).hex())
    p.chmod(0o600)
    return p


def symphony(
    *args: str, key_file: Path, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "symphony", "run", *args, "--key-file", str(key_file)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def _ops_melody(path: Path, *, fail: bool = False) -> Path:
    m = Melody("ops", metadata={"inputs": {"who": "n1.template"}})
    greet = m.create_node("op.template", name="greet", config={"template": "hello world"})
    split = m.create_node("op.split", config={"separator": " "})
    m.connect(greet.id, "text", split.id, "text")
    if fail:
        bad = m.create_node("op.json_extract", config={"path": "$.missing"})
        m.connect(split.id, "parts", bad.id, "data")
    save(m, path)
    return path


def test_json_result_and_exit_0(tmp_path: Path, key_file: Path) -> None:
    melody = _ops_melody(tmp_path / "ops.melody")
    p = symphony(str(melody), "--data-dir", str(tmp_path / "d"), "--json", "--input",
                 "who=hi there", key_file=key_file, cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_OK, p.stderr
    out = json.loads(p.stdout)
    assert set(out) >= {"run_id", "status", "nodes", "outputs"}
    assert out["status"] == "succeeded"
    assert out["outputs"] == {"n2.parts": ["hi", "there"]}
    node = out["nodes"][0]
    assert set(node) >= {"id", "type", "state", "attempts", "cached", "started", "finished",
                         "cost", "artifacts"}  # fmt: skip
    assert "n1               succeeded" in p.stderr  # live progress
    again = symphony(str(melody), "--data-dir", str(tmp_path / "d"), "--json", "--input",
                     "who=hi there", key_file=key_file, cwd=tmp_path)  # fmt: skip
    assert all(n["cached"] for n in json.loads(again.stdout)["nodes"])


def test_failed_run_exits_1(tmp_path: Path, key_file: Path) -> None:
    melody = _ops_melody(tmp_path / "f.melody", fail=True)
    p = symphony(str(melody), "--data-dir", str(tmp_path / "d"), "--json", key_file=key_file,
                 cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_FAILED
    out = json.loads(p.stdout)
    assert out["status"] == "failed"
    assert "missing" in out["nodes"][2]["error"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "ops.melody:1:"),
        ('{"format_version": 2, "name": "x", "nodez": []}', "nodez: unknown field"),
    ],
)
def test_invalid_file_exits_2_naming_the_problem(
    tmp_path: Path, key_file: Path, content: str, message: str
) -> None:
    (tmp_path / "ops.melody").write_text(content)
    p = symphony("ops.melody", "--data-dir", str(tmp_path / "d"), key_file=key_file,
                 cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_INVALID
    assert message in p.stderr


def test_missing_file_and_bad_input_exit_2(tmp_path: Path, key_file: Path) -> None:
    p = symphony("nope.melody", key_file=key_file, cwd=tmp_path)
    assert p.returncode == EXIT_INVALID
    assert "nope.melody: no such file" in p.stderr
    melody = _ops_melody(tmp_path / "ops.melody")
    p = symphony(str(melody), "--input", "colour=red", "--data-dir", str(tmp_path / "d"),
                 key_file=key_file, cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_INVALID
    assert "--input colour: not an input of this melody" in p.stderr
    p = symphony(str(melody), "--input", "novalue", key_file=key_file, cwd=tmp_path)
    assert p.returncode == EXIT_INVALID
    assert "expected NAME=VALUE" in p.stderr


def test_unopenable_data_dir_exits_4(tmp_path: Path, key_file: Path) -> None:
    melody = _ops_melody(tmp_path / "ops.melody")
    data = tmp_path / "d"
    assert symphony(str(melody), "--data-dir", str(data), key_file=key_file,
                    cwd=tmp_path).returncode == 0  # fmt: skip
    other = tmp_path / "other.key"
    other.write_text(bytes(range(1, 33)).hex())
    other.chmod(0o600)
    p = symphony(str(melody), "--data-dir", str(data), key_file=other, cwd=tmp_path)
    assert p.returncode == EXIT_DATA
    assert str(data) in p.stderr


def test_resume_unknown_run_exits_2(tmp_path: Path, key_file: Path) -> None:
    p = symphony("--resume", "nope", "--data-dir", str(tmp_path / "d"), key_file=key_file,
                 cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_INVALID
    assert "no run 'nope'" in p.stderr


@pytest.mark.slow
def test_sigint_interrupts_and_resume_finishes(tmp_path: Path, key_file: Path) -> None:
    """A run interrupted with Ctrl+C exits 3, says how to resume, and resumes."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.md").write_text("# A\n\nSome text about a topic.\n")
    template = ROOT / "app/symphony/resources/templates/summarize_folder.melody"
    proc = subprocess.Popen(
        [sys.executable, "-m", "symphony", "run", str(template), "--data-dir",
         str(tmp_path / "d"), "--key-file", str(key_file), "--workspace", str(ws), "--json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + 120
    while "summarize        running" not in seen:
        line = proc.stderr.readline()
        assert line, seen
        assert time.monotonic() < deadline, seen
        seen += line
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, seen + err
    result = json.loads(out)
    assert result["status"] == "interrupted"
    assert f"symphony run --resume {result['run_id']}" in err
    p = symphony("--resume", result["run_id"], "--data-dir", str(tmp_path / "d"), "--json",
                 "--workspace", str(ws), key_file=key_file, cwd=tmp_path, timeout=600)  # fmt: skip
    assert p.returncode == EXIT_OK, p.stderr
    resumed = json.loads(p.stdout)
    states = {n["id"]: n for n in resumed["nodes"]}
    assert states["list"]["attempts"] == 0  # done before the interrupt: not run again
    assert (ws / "SUMMARY.md").read_text().startswith("# Folder summary")


def test_resume_of_a_pruned_run_exits_2_and_says_why(tmp_path: Path, key_file: Path) -> None:
    from symphony.conductor.conductor import Conductor
    from symphony.pit import Pit
    from symphony.registry import default_registry

    data = tmp_path / "d"
    melody = _ops_melody(tmp_path / "ops.melody")
    p = symphony(str(melody), "--data-dir", str(data), "--json", "--quiet", key_file=key_file,
                 cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_OK, p.stderr
    run_id = json.loads(p.stdout)["run_id"]
    pit = Pit.open(data, key_file=key_file)
    try:
        assert Conductor(pit, default_registry()).prune_runs(0) == [run_id]
    finally:
        pit.close()
    p = symphony("--resume", run_id, "--data-dir", str(data), key_file=key_file, cwd=tmp_path)
    assert p.returncode == EXIT_INVALID
    assert f"run {run_id!r} cannot be resumed: its progress was pruned" in p.stderr


@pytest.mark.parametrize("bad", ["0", "-3", "many"])
def test_keep_runs_must_be_a_positive_whole_number(
    tmp_path: Path, key_file: Path, bad: str
) -> None:
    melody = _ops_melody(tmp_path / "ops.melody")
    p = symphony(str(melody), "--keep-runs", bad, key_file=key_file, cwd=tmp_path)
    assert p.returncode == EXIT_INVALID
    assert f"--keep-runs: expected a whole number ≥ 1, not {bad!r}" in p.stderr


def runs(*args: str, key_file: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "symphony", "runs", *args, "--key-file", str(key_file)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_runs_lists_the_history_and_shows_one_run(tmp_path: Path, key_file: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    empty = runs("--data-dir", str(data), key_file=key_file, cwd=tmp_path)
    assert empty.returncode == EXIT_OK, empty.stderr
    assert f"no runs recorded in {data}" in empty.stdout
    ok_melody = _ops_melody(tmp_path / "ok.melody")
    bad_melody = _ops_melody(tmp_path / "bad.melody", fail=True)
    quiet = ("--data-dir", str(data), "--json", "--quiet")
    ok = json.loads(symphony(str(ok_melody), *quiet, key_file=key_file, cwd=tmp_path).stdout)
    bad = json.loads(symphony(str(bad_melody), *quiet, key_file=key_file, cwd=tmp_path).stdout)

    table = runs("--data-dir", str(data), key_file=key_file, cwd=tmp_path)
    assert table.returncode == EXIT_OK, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["RUN", "ID", "STARTED", "STATUS", "TOOK", "NODES", "COST", "MELODY"]
    assert lines[1].startswith(bad["run_id"])
    assert "failed *" in lines[1]
    assert " 2/3 " in lines[1]
    assert lines[2].startswith(ok["run_id"])
    assert "succeeded" in lines[2]
    assert " 2/2 " in lines[2]
    assert "* resumable: symphony run --resume RUN_ID" in table.stdout

    listed = json.loads(runs("--data-dir", str(data), "--json", "--limit", "1",
                             key_file=key_file, cwd=tmp_path).stdout)  # fmt: skip
    assert [(r["run_id"], r["status"], r["resumable"]) for r in listed] == [
        (bad["run_id"], "failed", True)
    ]
    assert listed[0]["detail"] == "failed: n3"
    assert listed[0]["melody"] == "ops"
    assert listed[0]["source"] == str(bad_melody)

    one = runs(bad["run_id"], "--data-dir", str(data), key_file=key_file, cwd=tmp_path)
    assert one.returncode == EXIT_OK, one.stderr
    assert "status:   failed (failed: n3)" in one.stdout
    nodes = [ln.split()[:2] for ln in one.stdout.split("nodes:\n")[1].splitlines()[:3]]
    # n1 and n2 came from the store (the first run made the same outputs), as the log tells
    assert nodes == [["n1", "cached"], ["n2", "cached"], ["n3", "failed"]]
    assert f"resume with: symphony run --resume {bad['run_id']}" in one.stdout
    detail = json.loads(runs(bad["run_id"], "--data-dir", str(data), "--json",
                             key_file=key_file, cwd=tmp_path).stdout)  # fmt: skip
    assert [s["state"] for s in detail["steps"]] == ["succeeded", "succeeded", "failed"]
    # n3 failed, so the run kept an event log: each node's attempts and recoveries
    n3 = detail["steps"][2]
    assert (n3["attempts"], n3["recoveries"]) == (1, ["abort"])
    assert "attempts 1: abort" in one.stdout.split("nodes:\n")[1].splitlines()[2]

    # Once its progress is pruned, the log still tells its nodes.
    from symphony.pit import Pit

    with Pit.open(data, key_file=key_file) as pit:
        pit.dag.drop_workflow(bad["run_id"])
    pruned = runs(bad["run_id"], "--data-dir", str(data), key_file=key_file, cwd=tmp_path)
    assert pruned.returncode == EXIT_OK, pruned.stderr
    assert "nodes:    (pruned from the run history: as its event log tells them)" in pruned.stdout
    assert "resume with" not in pruned.stdout
    after = pruned.stdout.split("as its event log tells them)\n")[1].splitlines()[:3]
    assert [ln.split()[:2] for ln in after] == [
        ["n1", "cached"],
        ["n2", "cached"],
        ["n3", "failed"],
    ]
    # a run that logged nothing says its nodes are gone
    with Pit.open(data, key_file=key_file) as pit:
        pit.dag.drop_workflow(ok["run_id"])
    gone = runs(ok["run_id"], "--data-dir", str(data), key_file=key_file, cwd=tmp_path)
    assert "nodes:    not kept (pruned from the run history" in gone.stdout


def test_runs_names_an_unknown_run_and_a_missing_data_dir(tmp_path: Path, key_file: Path) -> None:
    data = tmp_path / "d"
    assert symphony(str(_ops_melody(tmp_path / "ok.melody")), "--data-dir", str(data), "--quiet",
                    key_file=key_file, cwd=tmp_path).returncode == EXIT_OK  # fmt: skip
    p = runs("nope", "--data-dir", str(data), key_file=key_file, cwd=tmp_path)
    assert p.returncode == EXIT_INVALID
    assert "no run 'nope' in this data directory" in p.stderr
    p = runs("--data-dir", str(tmp_path / "none"), key_file=key_file, cwd=tmp_path)
    assert p.returncode == EXIT_DATA
    assert f"{tmp_path / 'none'}: no such folder" in p.stderr
    p = runs("--data-dir", str(data), "--limit", "0", key_file=key_file, cwd=tmp_path)
    assert p.returncode == EXIT_INVALID
    assert "--limit: expected a whole number ≥ 1, not '0'" in p.stderr
    p = runs("--data-dir", str(data), "--limit", "3", "--all", key_file=key_file, cwd=tmp_path)
    assert p.returncode == EXIT_INVALID
    assert "argument --all: not allowed with argument --limit" in p.stderr
