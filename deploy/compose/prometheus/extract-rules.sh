#!/bin/sh
# Prometheus reads plain rule files; the alert rules are the `spec` of the PrometheusRule the
# manifests ship. Writes that `spec` (everything after `spec:`, de-indented by two spaces) to
# OUT, then runs the rest of the arguments. Usage: extract-rules.sh RULE OUT COMMAND...
set -eu
rule=$1
out=$2
shift 2
sed -n '/^spec:/,$p' "$rule" | sed '1d; s/^  //' >"$out"
exec "$@"
