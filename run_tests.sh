#!/usr/bin/env bash
# ./run_tests.sh install-deps | fast | unit | integration | e2e | reliability | all | coverage | quality
# fast: every test but the slow and e2e ones, for the edit-test loop (paths and options follow).
set -euo pipefail
cd "$(dirname "$0")"

VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
export LITELLM_LOCAL_MODEL_COST_MAP=True
# Bytecode caches (__pycache__, git-ignored) are written as usual even where the environment
# turns them off: without them every run, and every server a test starts, compiles the project
# and pytest rewrites every test module again (about a third of the unit suite's collection).
unset PYTHONDONTWRITEBYTECODE

install_deps() {
    [ -x "$PY" ] || python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -e './sdk[fast]' -e '.[dev]'
    touch "$VENV/.installed"
    if [ -d tests/e2e ] && ! command -v chromium >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        else
            echo "chromium is missing: install Debian's chromium package for the browser tests" >&2
        fi
    fi
}

# pytest exits 5 when a selection holds no test; a folder that is still empty is not a failure.
run_pytest() {
    local status=0
    "$PY" -m pytest "$@" || status=$?
    if [ "$status" = 5 ]; then status=0; fi
    return "$status"
}

quality() {
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy" pystrument_lab collector sdk/performance_monitor panel_apps
}

case "${1:-all}" in
    install-deps) install_deps ;;
    fast) run_pytest -m "not slow and not e2e" "${@:2}" ;;
    # The unit tests use none of the property-testing plugins; not loading them saves ~3 s a run.
    # Two worker processes (work-stealing): 24 s -> 15 s on two idle cores.
    unit) run_pytest -p no:schemathesis -p no:hypothesispytest -p no:anyio -n 2 --dist worksteal tests/unit "${@:2}" ;;
    integration) run_pytest tests/integration "${@:2}" ;;
    e2e) run_pytest tests/e2e "${@:2}" ;;
    reliability) run_pytest tests/reliability tests/security "${@:2}" ;;
    quality) quality ;;
    coverage)
        "$PY" -m pip install --quiet coverage
        "$PY" -m coverage run -m pytest tests "${@:2}"
        "$PY" -m coverage report
        ;;
    all) quality && run_pytest tests "${@:2}" ;;
    *) echo "usage: $0 install-deps|fast|unit|integration|e2e|reliability|all|coverage|quality" >&2; exit 2 ;;
esac
