#!/usr/bin/env bash
# Smoke-test the built bundle (builds nothing): bash packaging/smoke_test.sh [BUNDLE]
#
# BUNDLE defaults to dist/Symphony. The bundle is copied to a path with spaces and non-ASCII
# characters, then:
#   1. `symphony --version`
#   2. `symphony --run-extension` without arguments: the extension runner's usage error (exit 2)
#   3. the "Summarize a folder" template runs headless (`symphony run … --json`) on a temporary
#      workspace with the embedded model; the File Explorer and the AI Instrument must run as
#      children of the frozen executable (`symphony --run-extension …`); SUMMARY.md must be written
#   4. the same template again, SIGKILLing the AI Instrument child (found with pgrep -P) while the
#      run is going: the run must still complete (exit 0, status "succeeded")
#   5. the GUI opens offscreen: `symphony --smoke-test` exits 0 and prints startup_ms=N
# Any failure prints "smoke test FAILED at step <name>: <why>" and exits non-zero; the temporary
# folder is kept then, for the logs.
set -euo pipefail
cd "$(dirname "$0")/.."

SRC="${1:-dist/Symphony}"
RUN_TIMEOUT="${SMOKE_RUN_TIMEOUT:-900}"
STEP=setup
fail() {
  echo "smoke test FAILED at step $STEP: $*" >&2
  echo "  logs: $BASE" >&2
  exit 1
}
step() {
  STEP="$1"
  echo "smoke test: $1 …"
}

[ -x "$SRC/symphony" ] || { echo "smoke test FAILED at step setup: no bundle at $SRC (run \`make bundle\`)" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "smoke test FAILED at step setup: python3 is needed to read --json output" >&2; exit 1; }

BASE="$(mktemp -d "${TMPDIR:-/tmp}/sym test.XXXXXX")"
APP="$BASE/Sÿmphony ünï"
EXE="$APP/symphony"
WATCHER_PID=""
RUN_PID=""
cleanup() {
  local rc=$?
  for p in $WATCHER_PID $RUN_PID; do kill "$p" 2>/dev/null || true; done
  if [ "$rc" -eq 0 ]; then rm -rf "$BASE"; fi
}
trap cleanup EXIT

step "copy the bundle to '$APP'"
cp -a "$SRC" "$APP" || fail "cannot copy $SRC"

# Everything the runs write stays in the temporary folder: no keyring, no user data.
export XDG_DATA_HOME="$BASE/xdg data" XDG_CONFIG_HOME="$BASE/xdg config" XDG_CACHE_HOME="$BASE/xdg cache"
export SYMPHONY_PIT_KEY_FILE="$BASE/pit.key"
export QT_QPA_PLATFORM=offscreen

# ---------------------------------------------------------------------------------------------
step "--version"
out="$("$EXE" --version 2>&1)" || fail "exit $? from --version: $out"
[[ "$out" =~ ^symphony\ [0-9] ]] || fail "unexpected --version output: $out"
echo "  $out"

# ---------------------------------------------------------------------------------------------
step "--run-extension dispatch"
rc=0
out="$("$EXE" --run-extension </dev/null 2>&1)" || rc=$?
[ "$rc" -eq 2 ] || fail "expected the runner's usage exit code 2, got $rc: $out"
[[ "$out" == *"symphony extension runner"* ]] || fail "the runner did not answer: $out"

# ---------------------------------------------------------------------------------------------
TEMPLATE_SRC="$APP/_internal/symphony/resources/templates/summarize_folder.melody"
[ -f "$TEMPLATE_SRC" ] || fail "the template is not in the bundle: $TEMPLATE_SRC"

# make_workspace DIR: a small project with Markdown files to summarize, and the template.
make_workspace() {
  mkdir -p "$1/docs ü"
  printf '# Pump station\n\nThe pump station moves water from the lower basin to the tank on the hill.\nIt runs two pumps that alternate every week.\n' >"$1/README.md"
  printf '# Maintenance\n\nCheck the seals every month and replace the filters every three months.\n' >"$1/docs ü/maintenance.md"
  cp "$TEMPLATE_SRC" "$1/summarize_folder.melody"
}

# ext_children PID: "pid command line" of each child of the frozen executable, itself the child
# of the `timeout` process PID.
ext_children() {
  local a c
  for a in $(pgrep -P "$1" || true); do
    for c in $(pgrep -P "$a" || true); do
      printf '%s %s\n' "$c" "$(tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null || true)"
    done
  done
}

# watch_children PID FILE: record the extension children of run PID until it exits.
watch_children() {
  : >"$2"
  while kill -0 "$1" 2>/dev/null; do
    ext_children "$1" >>"$2"
    sleep 0.05
  done
}

# start_run WORKSPACE: `symphony run` in the background (cwd = the workspace), sets RUN_PID.
start_run() {
  local ws="$1" extra=()
  if "$EXE" run --help 2>/dev/null | grep -- "--workspace" >/dev/null; then extra=(--workspace "$ws"); fi
  (cd "$ws" && exec timeout "$RUN_TIMEOUT" "$EXE" run ./summarize_folder.melody \
    --data-dir "$BASE/data $(basename "$ws")" --json "${extra[@]}" \
    >"$ws.out.json" 2>"$ws.err.log") &
  RUN_PID=$!
}

# check_run WORKSPACE RC: exit 0, status succeeded, SUMMARY.md written and non-empty.
check_run() {
  local ws="$1" rc="$2" status
  [ "$rc" -eq 0 ] || fail "symphony run exited $rc; stderr: $(tail -20 "$ws.err.log")"
  status="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$ws.out.json" 2>&1)" \
    || fail "--json printed no valid JSON object: $(head -c 2000 "$ws.out.json") ($status)"
  [ "$status" = succeeded ] || fail "the run's status is $status, not succeeded"
  [ -s "$ws/SUMMARY.md" ] || fail "the report $ws/SUMMARY.md was not written (or is empty)"
}

# has_child FILE WHAT: a child ran as the frozen executable with --run-extension on WHAT.
has_child() {
  # no `grep -q` in a pipeline: it exits at the first match, and pipefail counts the SIGPIPE
  grep -F -- "$EXE --run-extension " "$1" | grep -F -- "$2" >/dev/null
}

step "run the 'Summarize a folder' template headless"
WS1="$BASE/workspace one"
make_workspace "$WS1"
start_run "$WS1"
run_pid=$RUN_PID
watch_children "$run_pid" "$BASE/children1.txt" &
WATCHER_PID=$!
rc=0
wait "$run_pid" || rc=$?
RUN_PID=""
check_run "$WS1" "$rc"
wait "$WATCHER_PID" 2>/dev/null || true
WATCHER_PID=""
has_child "$BASE/children1.txt" file_explorer \
  || fail "no File Explorer child of the frozen executable was seen ($(sort -u "$BASE/children1.txt" | head -5))"
has_child "$BASE/children1.txt" ai_instrument \
  || fail "no AI Instrument child of the frozen executable was seen ($(sort -u "$BASE/children1.txt" | head -5))"
echo "  SUMMARY.md: $(wc -c <"$WS1/SUMMARY.md") bytes"

# ---------------------------------------------------------------------------------------------
step "kill the AI Instrument child during a run"
WS2="$BASE/workspace two"
make_workspace "$WS2"
start_run "$WS2"
run_pid=$RUN_PID
killed=""
seen=""
deadline=$((SECONDS + RUN_TIMEOUT))
# Kill it once it has had KILL_AFTER seconds to start and take its request (model load and
# generation take seconds), not in its first instant.
while [ -z "$killed" ] && kill -0 "$run_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
  line="$(ext_children "$run_pid" | grep -F -- "--run-extension" | grep -F ai_instrument | head -1 || true)"
  if [ -n "$line" ] && [ -z "$seen" ]; then
    seen="${line%% *}"
    sleep "${SMOKE_KILL_AFTER:-0.5}"
    kill -KILL "$seen" 2>/dev/null && killed="$seen"
  fi
  sleep 0.02
done
rc=0
wait "$run_pid" || rc=$?
RUN_PID=""
[ -n "$seen" ] || fail "the AI Instrument child never appeared under the frozen executable (run exit $rc)"
[ -n "$killed" ] || fail "the AI Instrument child (pid $seen) was gone before it could be killed: the run was faster than SMOKE_KILL_AFTER=${SMOKE_KILL_AFTER:-0.5}s (run exit $rc)"
echo "  killed the AI Instrument child (pid $killed)"
check_run "$WS2" "$rc"

# ---------------------------------------------------------------------------------------------
step "--smoke-test (GUI offscreen)"
rc=0
out="$(cd "$BASE" && timeout 300 "$EXE" --smoke-test 2>&1)" || rc=$?
[ "$rc" -eq 0 ] || fail "exit $rc: $(echo "$out" | tail -20)"
[[ "$out" =~ startup_ms=[0-9]+ ]] || fail "no startup_ms=N in the output: $(echo "$out" | tail -5)"
echo "  ${BASH_REMATCH[0]}"

echo "smoke test passed: $SRC works from '$APP'"
