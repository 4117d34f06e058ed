#!/usr/bin/env bash
# Builds the libFuzzer seed corpora for the fuzz targets that read config text.
#
#   fuzz/seed.sh            # fills fuzz/corpus/{parse_yaml,parse_json,translate}
#
# Copies, when they exist:
#   - the repo's example configs:   examples/**/*.{yaml,yml,json}
#   - gloo-core's test fixtures:    gloo-core/tests/**/*.{yaml,yml,json}
#   - the handwritten Gloo resources in fuzz/seeds/
#   - any extra directories named in $EXTRA_SEED_DIRS (space-separated), e.g.
#     EXTRA_SEED_DIRS=/work/ref/gloo fuzz/seed.sh
# into every corpus (YAML seeds give the JSON target key names to mutate and vice versa).
# Files are named by the SHA-1 of their content, as libFuzzer names its own corpus entries,
# so rerunning the script is idempotent and never duplicates an input. The corpus
# directories are gitignored.
set -euo pipefail

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(dirname "$fuzz_dir")"
targets=(parse_yaml parse_json translate)

sources=("$repo_dir/examples" "$repo_dir/gloo-core/tests" "$fuzz_dir/seeds")
# shellcheck disable=SC2206  # word splitting is intended
sources+=(${EXTRA_SEED_DIRS:-})

for target in "${targets[@]}"; do
    mkdir -p "$fuzz_dir/corpus/$target"
done

count=0
for dir in "${sources[@]}"; do
    [ -d "$dir" ] || continue
    while IFS= read -r -d '' file; do
        hash="$(sha1sum "$file" | cut -d' ' -f1)"
        for target in "${targets[@]}"; do
            cp "$file" "$fuzz_dir/corpus/$target/$hash"
        done
        count=$((count + 1))
    done < <(find "$dir" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) \
                 -not -path '*/target/*' -size -1024k -print0)
done

echo "seed.sh: copied $count files into ${targets[*]/#/fuzz/corpus/}"
