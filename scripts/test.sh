#!/usr/bin/env bash
# The README's test command: install what is missing, build, typecheck, then run
# every suite (unit, integration against real Postgres + nats-server, kernel tests)
# and end with one line: "N passed, N failed[, N skipped]".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
HDRCAP_WITH_TEST_TOOLS=1 ./scripts/install-deps.sh || exit 1
./scripts/build.sh || { echo "0 passed, 1 failed (build)"; exit 1; }
npx turbo run typecheck --output-logs=errors-only || { echo "0 passed, 1 failed (typecheck)"; exit 1; }

report=$(mktemp -t hdrcap-vitest.XXXXXX.json)
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  // Suites that fail to load count as failures too.
  const failedSuites = r.testResults.filter((s) => s.status === "failed" && s.assertionResults.length === 0).length;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests + failedSuites} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$report" 2>/dev/null || echo "0 passed, 1 failed (no test report)"
rm -f "$report"
exit $status
