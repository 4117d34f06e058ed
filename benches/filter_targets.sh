#!/usr/bin/env bash
# The per-request CPU targets of issue 5, from the criterion benches, each with its ratio to
# the target (<= 1.00 meets it):
#
#   local rate limit        added CPU <= 1 µs          (filters.rs)
#   header transformation   added CPU <= 5 µs          (transform.rs)
#   JWT RS256               layer <= 1.2 x ring's raw verify of the same token (jwt.rs)
#   WAF, CRS benign GET     added CPU <= 10% of libmodsecurity's own transaction (waf.rs;
#                           also interleaved with the engine, `waf.rs --paired`, printed last)
#
# "Added" is the case minus the bare service it wraps, in the process's CPU time per request
# (cpu_time.rs). Uses criterion's mean estimates.
#
#   benches/filter_targets.sh             run the benches, then report
#   benches/filter_targets.sh --report    report the last run's results only
#
# Extra arguments go to criterion, e.g. `-- --measurement-time 10`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
if [ "${1:-}" != "--report" ]; then
  cd "$root"
  for bench in filters transform jwt; do
    cargo bench -p gloo-benches --bench "$bench" "$@"
  done
  cargo bench -p gloo-benches --features waf --bench waf "$@"
  # The WAF's ratio again, its cases interleaved with the engine's (waf.rs, `--paired`).
  cargo bench -p gloo-benches --features waf --bench waf -- --paired 100 | tee "$target/criterion/waf-paired.txt"
fi

python3 - "$target/criterion" <<'PY'
import glob, json, os, sys

means = {}
for path in glob.glob(os.path.join(sys.argv[1], "**", "new", "benchmark.json"), recursive=True):
    with open(path) as f:
        full_id = json.load(f)["full_id"]
    with open(os.path.join(os.path.dirname(path), "estimates.json")) as f:
        means[full_id] = json.load(f)["mean"]["point_estimate"]  # ns

def show(label, value, target, unit, ratio):
    verdict = "meets" if ratio <= 1.0 else "MISSES"
    print(f"  {label:<52} {value:>9.2f} {unit:<3} target {target:<12} ratio {ratio:5.2f}  {verdict}")

def added(case, bare, target_ns, label):
    if case in means and bare in means:
        extra = means[case] - means[bare]
        show(label, extra / 1e3, f"<= {target_ns / 1e3:g} µs", "µs", extra / target_ns)
    else:
        print(f"  {label:<52} no result for {case!r} or {bare!r}")

print("issue 5, added CPU per request (mean; ratio = measured / target):")
for case in ["local rate limit, shared bucket",
             "local rate limit, shared bucket, x-ratelimit headers",
             "local rate limit, bucket per client (64 clients)"]:
    added(case, "local rate limit, bare service", 1000, case)
for case in ["transform, header from a request header + an extraction",
             "transform, one header template, body streamed",
             "transform, extract query params (Gloo docs)"]:
    added(case, "transform, bare service", 5000, case)

layer, raw, bare = "jwt, RS256 (2048-bit)", "jwt, RS256 raw ring verify (the backend alone)", "jwt, bare service"
if all(k in means for k in (layer, raw, bare)):
    x = (means[layer] - means[bare]) / means[raw]
    print(f"  {'jwt RS256: layer added / raw ring verify':<52} {(means[layer] - means[bare]) / 1e3:>9.2f} µs vs {means[raw] / 1e3:.2f} µs raw: "
          f"{x:.3f}x, target <= 1.2x, ratio {x / 1.2:5.2f}  {'meets' if x <= 1.2 else 'MISSES'}")
else:
    print("  jwt RS256: no results")

# The engine is measured before and after the layer's cases (waf.rs says why): the baseline
# is the mean of the two.
for group in ["waf cpu", "waf"]:
    first = f"{group}/engine alone (libmodsecurity C API), benign GET"
    again = f"{group}/engine alone, again after the layer cases, benign GET"
    bare = f"{group}/bare service, GET"
    if first not in means:
        print(f"  {group}: no engine result")
        continue
    engine = (means[first] + means[again]) / 2 if again in means else means[first]
    print(f"  {group}: engine {means[first] / 1e3:.1f} µs first, "
          f"{means[again] / 1e3 if again in means else float('nan'):.1f} µs again, baseline {engine / 1e3:.1f} µs")
    for case in [f"{group}/CRS, benign GET", f"{group}/CRS in place (no blocking pool), benign GET"]:
        if all(k in means for k in (bare, case)):
            over = (means[case] - means[bare]) / engine - 1.0
            kind = "CPU" if group == "waf cpu" else "wall"
            print(f"  {case + ' (' + kind + ')':<52} {(means[case] - means[bare]) / 1e3:>9.1f} µs vs engine {engine / 1e3:.1f} µs: "
                  f"{over * 100:+.1f}%, target <= +10%, ratio {over / 0.10:5.2f}  {'meets' if over <= 0.10 else 'MISSES'}")
        else:
            print(f"  {case}: no results")
PY
if [ -f "$target/criterion/waf-paired.txt" ]; then
  sed 's/^/  /' "$target/criterion/waf-paired.txt"
fi
