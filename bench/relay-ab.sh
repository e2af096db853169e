#!/usr/bin/env bash
# Interleaved A/B of the relay package's own benchmarks
# (BenchmarkRelayThroughput, BenchmarkRelayLatency1000): BASE against HEAD,
# both running HEAD's benchmark files, alternating runs so that a change in
# the machine's load hits both alike; benchstat at the end.
#
#   bench/relay-ab.sh              # BASE=cc0e302 (before the second relay pass), COUNT=6
#   BASE=ff2542d COUNT=10 bench/relay-ab.sh
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
BASE=${BASE:-cc0e302}
COUNT=${COUNT:-6}
OUT=${OUT:-$(mktemp -d)}
a=$OUT/base-tree b=$OUT/head-tree
git -C "$repo" worktree add -q --detach "$a" "$BASE"
git -C "$repo" worktree add -q --detach "$b" HEAD
trap 'git -C "$repo" worktree remove --force "$a"; git -C "$repo" worktree remove --force "$b"' EXIT
for f in relay/bench_test.go relay/cpu_linux_test.go relay/cpu_other_test.go; do
	cp "$b/$f" "$a/$f"
done
(cd "$a" && go test -c -o "$OUT/base.test" ./relay/)
(cd "$b" && go test -c -o "$OUT/head.test" ./relay/)
for _ in $(seq "$COUNT"); do
	for x in base head; do
		(cd "$b/relay" && "$OUT/$x.test" -test.run '^$' -test.bench BenchmarkRelayThroughput -test.benchtime 10000x -test.benchmem -test.timeout 5m) >>"$OUT/$x.txt"
		(cd "$b/relay" && "$OUT/$x.test" -test.run '^$' -test.bench BenchmarkRelayLatency1000 -test.benchtime 2000x -test.benchmem -test.timeout 5m) >>"$OUT/$x.txt"
	done
done
cd "$OUT" && go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da base.txt head.txt
echo "raw results: $OUT" >&2
