"""``symphony run``: output, exit codes, errors, resume — as a user runs it, in a subprocess."""

from __future__ import annotations

import asyncio
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
    EXIT_PIPE,
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
    # copied into another folder, the hint still finds the data and the workspace
    assert f"--data-dir {tmp_path / 'd'} --key-file {key_file} --workspace {ws}\n" in err
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


# ------------------------------------------------------------------------------ session 12


def _copy_melody(path: Path) -> Path:
    """File Explorer: read ``in.txt`` of the workspace, write it to ``out.txt``."""
    m = Melody("copy")
    read = m.create_node("files.read", name="read", config={"path": "in.txt"})
    write = m.create_node("files.write", name="write",
                          config={"path": "out.txt", "mode": "overwrite"})  # fmt: skip
    m.connect(read.id, "text", write.id, "content")
    save(m, path)
    return path


def test_resume_reads_and_writes_in_the_runs_workspace(tmp_path: Path, key_file: Path) -> None:
    ws, elsewhere, data = tmp_path / "ws", tmp_path / "elsewhere", tmp_path / "d"
    ws.mkdir()
    elsewhere.mkdir()
    melody = _copy_melody(tmp_path / "copy.melody")
    p = symphony(str(melody), "--workspace", str(ws), "--data-dir", str(data), "--json",
                 "--quiet", key_file=key_file, cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_FAILED, p.stderr  # no in.txt yet
    run_id = json.loads(p.stdout)["run_id"]
    (ws / "in.txt").write_text("from the workspace")
    (elsewhere / "in.txt").write_text("from the wrong folder")
    p = symphony("--resume", run_id, "--data-dir", str(data), key_file=key_file, cwd=elsewhere)
    assert p.returncode == EXIT_OK, p.stderr
    assert f"resuming in the run's workspace {ws}" in p.stderr
    assert (ws / "out.txt").read_text() == "from the workspace"
    assert not (elsewhere / "out.txt").exists()
    # --workspace given: that one, and a word that it is not the run's
    p = symphony("--resume", run_id, "--data-dir", str(data), "--workspace", str(elsewhere),
                 "--quiet", key_file=key_file, cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_OK, p.stderr
    assert f"resuming in --workspace {elsewhere}, not in the run's workspace {ws}" in p.stderr


def test_resume_of_a_record_without_a_workspace_uses_the_current_folder(
    tmp_path: Path, key_file: Path
) -> None:
    from symphony.pit import Pit

    ws, data = tmp_path / "ws", tmp_path / "d"
    ws.mkdir()
    p = symphony(str(_copy_melody(tmp_path / "copy.melody")), "--workspace", str(ws),
                 "--data-dir", str(data), "--json", "--quiet", key_file=key_file,
                 cwd=tmp_path)  # fmt: skip
    run_id = json.loads(p.stdout)["run_id"]
    with Pit.open(data, key_file=key_file) as pit:  # as a run before session 12 recorded it
        record = json.loads(pit.artifacts.get("run/" + run_id))
        del record["workspace"]
        pit.artifacts.put("run/" + run_id, json.dumps(record).encode(), kind="json")
    (ws / "in.txt").write_text("here")
    p = symphony("--resume", run_id, "--data-dir", str(data), key_file=key_file, cwd=ws)
    assert p.returncode == EXIT_OK, p.stderr
    assert "the run's record does not say which workspace it used" in p.stderr
    assert (ws / "out.txt").read_text() == "here"


def test_resume_keeps_the_runs_options_unless_given(tmp_path: Path, key_file: Path) -> None:
    from symphony.conductor.conductor import Conductor, RunOptions
    from symphony.pit import Pit
    from symphony.registry import default_registry

    data = tmp_path / "d"
    melody = _ops_melody(tmp_path / "ops.melody")
    # the first run leaves n1 and n2 in the cache
    assert symphony(str(melody), "--data-dir", str(data), "--quiet", key_file=key_file,
                    cwd=tmp_path).returncode == EXIT_OK  # fmt: skip
    from symphony.workflow import load

    m = load(melody)
    m.set_breakpoint("n2", True)

    async def stop_at_the_breakpoint(c: Conductor) -> str:
        r = c.start(m, RunOptions(use_cache=False, budget=0.5, max_parallel=1))
        while r.state != "paused":
            await asyncio.sleep(0.005)
        r.cancel()
        await r.wait()
        return r.run_id

    with Pit.open(data, key_file=key_file) as pit:  # stopped at n2, as the app can
        run_id = asyncio.run(stop_at_the_breakpoint(Conductor(pit, default_registry())))
    p = symphony("--resume", run_id, "--data-dir", str(data), "--budget", "2", "--json",
                 key_file=key_file, cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_OK, p.stderr
    nodes = {n["id"]: n for n in json.loads(p.stdout)["nodes"]}
    # the run's use_cache=False holds: n2 runs (it would come from the cache), and the
    # breakpoint does not stop a run nobody can continue
    assert (nodes["n2"]["state"], nodes["n2"]["cached"], nodes["n2"]["attempts"]) == (
        "succeeded",
        False,
        1,
    )
    with Pit.open(data, key_file=key_file) as pit:
        options = json.loads(pit.artifacts.get("run/" + run_id))["options"]
    assert (options["use_cache"], options["budget"], options["max_parallel"]) == (False, 2.0, 1)


@pytest.mark.parametrize(
    ("option", "bad", "message"),
    [
        ("--budget", "-1", "expected an amount ≥ 0, not '-1'"),
        ("--budget", "nan", "expected an amount ≥ 0, not 'nan'"),
        ("--budget", "inf", "expected an amount ≥ 0, not 'inf'"),
        ("--max-parallel", "0", "expected a whole number ≥ 1, not '0'"),
        ("--max-parallel", "-2", "expected a whole number ≥ 1, not '-2'"),
    ],
)
def test_bad_budget_and_parallelism_are_refused_before_anything_runs(
    tmp_path: Path, key_file: Path, option: str, bad: str, message: str
) -> None:
    melody = _ops_melody(tmp_path / "ops.melody")
    p = symphony(str(melody), option, bad, "--data-dir", str(tmp_path / "d"), key_file=key_file,
                 cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_INVALID
    assert f"argument {option}: {message}" in p.stderr
    assert not (tmp_path / "d").exists()  # nothing ran, nothing was recorded


def test_json_output_is_strict_json_even_for_nan(tmp_path: Path, key_file: Path) -> None:
    m = Melody("nan")
    t = m.create_node("op.template", config={"template": '{{"a": NaN, "b": [Infinity, 1.5]}}'})
    x = m.create_node("op.json_extract", config={"path": "$"})
    m.connect(t.id, "text", x.id, "data")
    save(m, tmp_path / "nan.melody")
    p = symphony("nan.melody", "--data-dir", str(tmp_path / "d"), "--json", "--quiet",
                 key_file=key_file, cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_OK, p.stderr

    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    out = json.loads(p.stdout, parse_constant=refuse)
    assert out["outputs"] == {"n2.value": {"a": "NaN", "b": ["Infinity", 1.5]}}


def test_resume_command_names_what_is_not_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from symphony.conductor.run_cli import default_data_dir, resume_command

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert resume_command("R1") == "symphony run --resume R1"
    assert resume_command("R1", data_dir=default_data_dir(), workspace=tmp_path) == (
        "symphony run --resume R1"
    )
    assert resume_command("R1", data_dir="my pit", key_file="k", workspace=tmp_path / "a b") == (
        f"symphony run --resume R1 --data-dir '{tmp_path}/my pit' --key-file {tmp_path}/k "
        f"--workspace '{tmp_path}/a b'"
    )


def test_runs_hint_names_the_data_dir_and_json_errors_are_objects(
    tmp_path: Path, key_file: Path
) -> None:
    data = tmp_path / "d"
    failed = symphony(str(_ops_melody(tmp_path / "f.melody", fail=True)), "--data-dir",
                      str(data), "--json", "--quiet", key_file=key_file, cwd=tmp_path)  # fmt: skip
    run_id = json.loads(failed.stdout)["run_id"]
    one = runs(run_id, "--data-dir", str(data), key_file=key_file, cwd=tmp_path)
    assert (
        f"resume with: symphony run --resume {run_id} --data-dir {data} --key-file {key_file}"
        in one.stdout
    )
    p = runs("nope", "--data-dir", str(data), "--json", key_file=key_file, cwd=tmp_path)
    assert p.returncode == EXIT_INVALID
    assert json.loads(p.stdout) == {
        "error": "no run 'nope' in this data directory",
        "exit_code": EXIT_INVALID,
    }


def test_runs_into_a_closed_pipe_ends_quietly(tmp_path: Path, key_file: Path) -> None:
    data = tmp_path / "d"
    assert symphony(str(_ops_melody(tmp_path / "ops.melody")), "--data-dir", str(data),
                    "--quiet", key_file=key_file, cwd=tmp_path).returncode == EXIT_OK  # fmt: skip
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: `| head` that quit
    try:
        p = subprocess.run(
            [sys.executable, "-m", "symphony", "runs", "--data-dir", str(data), "--key-file",
             str(key_file)],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert p.returncode == EXIT_PIPE
    assert p.stderr == ""


def test_a_damaged_record_and_event_log_are_named(tmp_path: Path, key_file: Path) -> None:
    from symphony.conductor import EVENTS_PREFIX, RUN_PREFIX
    from symphony.pit import Pit
    from tests.conductor.conftest import damage_artifact

    data = tmp_path / "d"
    quiet = ("--data-dir", str(data), "--json", "--quiet")
    bad = json.loads(symphony(str(_ops_melody(tmp_path / "f.melody", fail=True)), *quiet,
                              key_file=key_file, cwd=tmp_path).stdout)["run_id"]  # fmt: skip
    ok = json.loads(symphony(str(_ops_melody(tmp_path / "o.melody")), *quiet,
                             key_file=key_file, cwd=tmp_path).stdout)["run_id"]  # fmt: skip
    with Pit.open(data, key_file=key_file) as pit:
        log = pit.artifacts.versions(EVENTS_PREFIX + bad)[-1]
        record = pit.artifacts.versions(RUN_PREFIX + ok)[-1]
    damage_artifact(data, log, key_file=key_file)
    damage_artifact(data, record, key_file=key_file)

    one = runs(bad, "--data-dir", str(data), key_file=key_file, cwd=tmp_path)
    assert one.returncode == EXIT_OK, one.stderr
    assert f"events:   its event log is not readable (artifact {log} failed" in one.stdout
    assert "n3" in one.stdout.split("nodes:")[1]  # the DAG Tracker's part is still shown
    detail = json.loads(runs(bad, "--data-dir", str(data), "--json", key_file=key_file,
                             cwd=tmp_path).stdout)  # fmt: skip
    assert f"artifact {log} failed its integrity check" in detail["event_log_error"]

    for p in (
        runs(ok, "--data-dir", str(data), key_file=key_file, cwd=tmp_path),
        symphony("--resume", ok, "--data-dir", str(data), key_file=key_file, cwd=tmp_path),
    ):
        assert p.returncode == EXIT_DATA, p.stderr
        assert f"run {ok!r}: its record in this data directory is damaged" in p.stderr
        assert f"artifact {record} failed its integrity check" in p.stderr
    table = runs("--data-dir", str(data), key_file=key_file, cwd=tmp_path)
    row = next(line for line in table.stdout.splitlines() if line.startswith(ok))
    assert "damaged" in row
    assert "(its record cannot be read)" in row


def test_runs_use_the_models_of_the_apps_settings(tmp_path: Path, key_file: Path) -> None:
    from PySide6.QtCore import QSettings

    from symphony.ui import settings as st
    from symphony.workflow.templates import load_template

    # the app's settings, where the child reads them: the embedded model off, one endpoint
    ini = Path(os.environ["XDG_CONFIG_HOME"]) / st.ORGANIZATION / f"{st.APPLICATION}.ini"
    store = QSettings(str(ini), QSettings.Format.IniFormat)
    endpoint = st.Endpoint("work", "http://127.0.0.1:9/v1", "m", price_per_call=0.3)
    st.Preferences(embedded_model=False, endpoints=[endpoint]).save(store)
    store.sync()
    melody = tmp_path / "review.melody"
    save(load_template("review_file"), melody)  # its reviewer asks for the default model
    p = symphony(str(melody), "--data-dir", str(tmp_path / "d"), key_file=key_file, cwd=tmp_path)
    assert p.returncode == EXIT_INVALID, p.stderr
    assert "turned off in the Settings" in p.stderr
    assert "known: work" in p.stderr  # the endpoint is a model of the run, as in the app


def test_inputs_and_options_the_run_cannot_take_are_refused_naming_them(
    tmp_path: Path, key_file: Path
) -> None:
    melody = _ops_melody(tmp_path / "ops.melody")
    data = ["--data-dir", str(tmp_path / "d")]
    # a number no melody file can hold: refused up front (it was a traceback, exit 1)
    for value in ("1e400", "-1e999"):
        p = symphony(str(melody), *data, "--json", "--input", f"n2.max_parts={value}",
                     key_file=key_file, cwd=tmp_path)  # fmt: skip
        assert p.returncode == EXIT_INVALID, p.stderr
        assert "Traceback" not in p.stderr
        assert (
            json.loads(p.stdout)["error"] == f"--input n2.max_parts: {value} is not a finite number"
        )
    # a bad option with --json: still one JSON object on stdout, as documented
    p = symphony(str(melody), *data, "--json", "--budget", "-1", key_file=key_file, cwd=tmp_path)
    assert p.returncode == EXIT_INVALID
    assert "--budget" in json.loads(p.stdout)["error"]
    # --resume with a file or inputs would ignore them: said, not done
    p = symphony(str(melody), "--resume", "20261122-x", *data, key_file=key_file, cwd=tmp_path)
    assert p.returncode == EXIT_INVALID
    assert "cannot change it" in p.stderr


def test_quiet_silences_progress_not_the_outputs(tmp_path: Path, key_file: Path) -> None:
    melody = _ops_melody(tmp_path / "ops.melody")
    p = symphony(str(melody), "--data-dir", str(tmp_path / "d"), "--quiet", key_file=key_file,
                 cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_OK, p.stderr
    assert p.stderr == ""
    assert "n2.parts:" in p.stdout


def test_a_huge_split_limit_is_no_limit_not_a_crash(tmp_path: Path, key_file: Path) -> None:
    melody = _ops_melody(tmp_path / "ops.melody")
    huge = "n2.max_parts=99999999999999999999999"
    p = symphony(str(melody), "--data-dir", str(tmp_path / "d"), "--json", "--input", huge,
                 key_file=key_file, cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_OK, p.stderr
    assert json.loads(p.stdout)["outputs"]["n2.parts"] == ["hello", "world"]


def test_an_extension_with_a_bad_node_type_is_skipped_not_fatal(
    tmp_path: Path, key_file: Path
) -> None:
    ext = Path(os.environ["XDG_DATA_HOME"]) / "symphony" / "extensions" / "acme_upper"
    ext.mkdir(parents=True)
    (ext / "main.py").write_text("from symphony.sdk import Extension\nextension = Extension()\n")
    (ext / "extension.toml").write_text(
        'id = "acme.upper"\nname = "Upper"\nversion = "1.0.0"\nentry = "main"\n'
        'activation_events = ["onNodeType:acme.upper"]\n\n[[node_types]]\nid = "acme.upper"\n'
        'version = "1.0.0"\ntitle = "Upper-case"\ncategory = "Text"\n'
        'inputs = [{ name = "text", type = "text", required = true }]\n'
        'outputs = [{ name = "text", type = "text" }]\n'
    )
    melody = _ops_melody(tmp_path / "ops.melody")
    p = symphony(str(melody), "--data-dir", str(tmp_path / "d"), "--quiet", key_file=key_file,
                 cwd=tmp_path)  # fmt: skip
    assert p.returncode == EXIT_OK, p.stderr
    assert "Traceback" not in p.stderr
    assert p.stderr.startswith(
        "symphony run: extension skipped: extension 'acme.upper': node_types[0].category: "
        "unknown category 'Text'"
    )
    assert "n2.parts:" in p.stdout
