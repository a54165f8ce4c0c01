#!/usr/bin/env bash
# The Flink conformance suite: COUNT random scripts per case, from SEED, through eddy and
# through Apache Flink; one line per case (`CASE: N scripts, M agree`), each disagreement
# shrunk, with both outputs. Exits 0 only when every case agrees. Installs nothing.
#
#   conformance/flink/run.sh COUNT SEED [--case SUBSTRING]...
#
# Needs java and javac (17 or later) and Flink's jars from PyPI's apache-flink-libraries.
# CONFORMANCE_WORK=DIR keeps the build and work files there (default: a temporary directory).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ $# -lt 2 ]; then
  echo "usage: conformance/flink/run.sh COUNT SEED [--case SUBSTRING]..." >&2
  exit 2
fi
count="$1" seed="$2"
shift 2

missing=0
for tool in java javac; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "missing: $tool (a JDK 17 or later). Install it with: apt-get install -y openjdk-17-jdk-headless" >&2
    missing=1
  fi
done
flink_lib=""
if command -v python3 >/dev/null 2>&1; then
  flink_lib="$(python3 -c 'import pyflink, os; print(os.path.join(list(pyflink.__path__)[0], "lib"))' 2>/dev/null || true)"
fi
if [ -z "$flink_lib" ] || [ ! -f "$flink_lib/flink-dist-2.3.0.jar" ]; then
  echo "missing: Flink 2.3.0's jars (python3's pyflink/lib/flink-dist-2.3.0.jar)." \
    "Install them with: pip install apache-flink-libraries==2.3.0" >&2
  missing=1
fi
if [ "$missing" != 0 ]; then
  exit 2
fi

work="${CONFORMANCE_WORK:-}"
if [ -z "$work" ]; then
  work="$(mktemp -d "${TMPDIR:-/tmp}/eddy-conformance.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/classes"
javac -nowarn -d "$work/classes" -cp "$flink_lib/*" "$here"/java/eddy/conformance/*.java 2> "$work/javac.log" || {
  cat "$work/javac.log" >&2
  exit 2
}
(cd "$root" && cargo build --quiet -p eddy-conformance)
target="$(cd "$root" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
status=0
"$target/debug/eddy-conformance" --count "$count" --seed "$seed" \
  --classpath "$work/classes:$flink_lib/*" --work "$work" "$@" || status=$?
exit "$status"
