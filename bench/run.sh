#!/usr/bin/env bash
# Reproduces the benchmark figures of docs/BENCHMARKS.md in one run:
# Parley's one-to-one core beside go.mau.fi/libsignal v0.2.1 and the
# primitive lower bounds (issue 2), and the relay beside embedded NATS
# (issue 3), plus the main module's own ratchet, pqxdh and relay benchmarks,
# and the relay's floors: fdatasync's distribution, the per-block work at
# 1, 4 and 16 KiB, the relay by block size, and the latency breakdown at
# 1,000 msgs/s with the garbage collector on and off.
#
#   bench/run.sh                 # COUNT=6 rounds, about 10-15 minutes on 2 cores
#   COUNT=10 OUT=/tmp/b bench/run.sh
#   MAIN_PKGS="ratchet pqxdh" bench/run.sh   # which main-module packages to include
#   ONLY=relay MAIN_PKGS=relay COUNT=4 bench/run.sh   # the relay's figures only (issue 3)
#
# Each test binary is built once, then run COUNT times with -test.count=1,
# one round after another: every benchmark gets COUNT samples (as with
# -count=COUNT), and a change in the machine's load during the run hits
# Parley and its baselines alike instead of only whichever ran last.
set -euo pipefail
cd "$(dirname "$0")"
COUNT=${COUNT:-6}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
BENCHSTAT=(go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da)
start=$SECONDS
step() { printf '\n== %s (t=%ds)\n' "$1" $((SECONDS - start)) >&2; }

step "build test binaries into $OUT"
[ "${ONLY:-}" = relay ] || go test -c -o "$OUT/cryptocore.test" ./cryptocore
go test -c -o "$OUT/relaynats.test" ./relaynats
# The main module's own benchmarks are extra context: a package that does
# not build (or whose TestMain fails) is reported and skipped.
mainpkgs=()
for pkg in ${MAIN_PKGS-ratchet pqxdh relay}; do
	if (cd .. && go test -c -o "$OUT/main-$pkg.test" "./$pkg"); then
		mainpkgs+=("$pkg")
	else
		echo "run.sh: main module package $pkg does not build; its benchmarks are skipped" >&2
	fi
done
rm -f "$OUT"/*.txt

# bench runs one test binary from its package directory, appending to a
# file; a benchmark still running after 5 minutes is a hang and fails.
bench() {
	local dir=$1 bin=$2 out=$3
	shift 3
	(cd "$dir" && "$OUT/$bin" -test.run '^$' -test.count 1 -test.benchmem -test.timeout 5m "$@") >>"$OUT/$out"
}

for round in $(seq "$COUNT"); do
	step "round $round of $COUNT"
	if [ "${ONLY:-}" != relay ]; then
		bench cryptocore cryptocore.test primitives.txt -test.bench '^BenchmarkPrimitive$' -test.benchtime 200ms
		bench cryptocore cryptocore.test core.txt -test.bench '^Benchmark(SessionSetup|SymmetricChain|SymmetricChainPQ|SymmetricChainPersist|PingPongDH|PingPongPQ|PingPongPersist|State)$' -test.benchtime 500ms
	fi
	bench relaynats relaynats.test relay.txt -test.bench '^Benchmark(Throughput|LatencyAt1000|Fdatasync|FdatasyncGroup8)$' -test.benchtime 1s
	bench relaynats relaynats.test floor.txt -test.bench '^BenchmarkBlockFloor$' -test.benchtime 5000x
	bench relaynats relaynats.test blocksize.txt -test.bench '^BenchmarkBlockSize$' -test.benchtime 5000x
	bench relaynats relaynats.test breakdown.txt -test.bench '^BenchmarkLatencyBreakdown$' -test.benchtime 2000x
	for pkg in "${mainpkgs[@]}"; do
		runs=("-test.bench . -test.benchtime 200ms")
		if [ "$pkg" = relay ]; then
			runs=("-test.bench RelayThroughput -test.benchtime 1s" "-test.bench RelayLatency1000 -test.benchtime 2000x")
		fi
		for args in "${runs[@]}"; do
			# shellcheck disable=SC2086 # args is a list of flags
			bench "../$pkg" "main-$pkg.test" "main-$pkg.txt" $args ||
				echo "run.sh: main module $pkg benchmarks failed; see $OUT/main-$pkg.txt" >&2
		done
	done
done

bs() { "${BENCHSTAT[@]}" "$@" 2>&1 | grep -v '^¹\|^²' || true; }

if [ "${ONLY:-}" != relay ]; then
	step "primitives (bench/cryptocore)"
	bs "$OUT/primitives.txt"
	step "Parley vs go.mau.fi/libsignal v0.2.1 (bench/cryptocore; base: libsignal)"
	bs -col '/impl@(libsignal parley)' "$OUT/core.txt"
fi
step "relay vs NATS: durable, one send in flight (bench/relaynats)"
bs -col '/sys@(jetstream jetstream-tls jetstream-syncalways relay-durable relay-durable-sqlite)' -filter '/sys:(jetstream OR jetstream-tls OR jetstream-syncalways OR relay-durable OR relay-durable-sqlite) OR .name:Fdatasync' "$OUT/relay.txt"
step "relay vs NATS: durable, up to 256 sends in flight"
bs -col '/sys@(jetstream-async jetstream-syncalways-async relay-durable-async relay-durable-sqlite-async)' -filter '/sys:(jetstream-async OR jetstream-syncalways-async OR relay-durable-async OR relay-durable-sqlite-async)' "$OUT/relay.txt"
step "relay vs NATS: not durable"
bs -col '/sys@(nats-core nats-core-tls relay-memory relay-memory-async)' -filter '/sys:(nats-core OR nats-core-tls OR relay-memory OR relay-memory-async)' "$OUT/relay.txt"
step "fdatasync distribution: one 4 KiB append, and eight (bench/relaynats)"
bs -filter '.name:(Fdatasync OR FdatasyncGroup8)' "$OUT/relay.txt"
step "per-block floor: the unavoidable work per block, by step and block size"
bs -col /block "$OUT/floor.txt"
step "relay end to end by block size, 64 sends in flight"
bs -col /block "$OUT/blocksize.txt"
step "latency breakdown at 1,000 msgs/s: the garbage collector on (GOGC=100) against off"
bs -col /gc "$OUT/breakdown.txt"
for pkg in "${mainpkgs[@]}"; do
	step "main module: $pkg"
	bs "$OUT/main-$pkg.txt"
done

step "ratios against the targets of issues 2 and 3"
inputs=()
for f in primitives core relay main-relay; do
	[ -s "$OUT/$f.txt" ] && inputs+=("$OUT/$f.txt")
done
go run ./cmd/benchratios "${inputs[@]}"
echo "raw results: $OUT" >&2
