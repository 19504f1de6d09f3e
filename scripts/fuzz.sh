#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang, ASan and UBSan into
# build/fuzz, then runs each for FUZZ_SECONDS (default 60) from its seed
# corpus in fuzz/corpus/<target>. New inputs go to build/fuzz/corpus, never
# into the tree. A crash stops with a non-zero exit and the reproducer path.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
OUT=build/fuzz
PREFIX=third_party/prefix
CXX=${FUZZ_CXX:-clang++}
command -v "$CXX" >/dev/null || { echo "fuzz: $CXX not found (scripts/bootstrap.sh installs clang)" >&2; exit 2; }
mkdir -p "$OUT"

FLAGS=(-std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -DMSGPACK_NO_BOOST -DRCP_VERSION='"fuzz"' -Icpp -isystem "$PREFIX/include")
# The core modules the targets reach; wolfCrypt (HMAC) and xxhash are C libraries.
CORE=(cpp/wire/frame.cpp cpp/wire/control_channel.cpp cpp/base/crypto.cpp cpp/wire/message.cpp cpp/wire/messages.cpp
      cpp/wire/chunk_header.cpp cpp/copy/path_validator.cpp cpp/copy/partial_file.cpp cpp/copy/filter_rules.cpp
      cpp/base/result.cpp cpp/base/unique_fd.cpp
      cpp/base/passwd_db.cpp cpp/base/remote_path.cpp)
LIBS=("$PREFIX/lib/libwolfssl.a" -lxxhash -lm -lpthread)

objs=()
for src in "${CORE[@]}"; do
  obj="$OUT/$(basename "${src%.cpp}").o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$0" -nt "$obj" ]; then
    "$CXX" "${FLAGS[@]/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,}" -c "$src" -o "$obj"
  fi
  objs+=("$obj")
done

status=0
for target in fuzz/fuzz_*.cpp; do
  name=$(basename "${target%.cpp}")
  exe="$OUT/$name"
  "$CXX" "${FLAGS[@]}" "$target" "${objs[@]}" "${LIBS[@]}" -o "$exe"
  work="$OUT/corpus/$name"
  mkdir -p "$work"
  echo "fuzz: $name for ${SECONDS_EACH}s"
  # -rss_limit_mb: memory must stay bounded whatever the input says.
  if ! "$exe" -max_total_time="$SECONDS_EACH" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
       -artifact_prefix="$OUT/$name-" "$work" "fuzz/corpus/$name" 2>"$OUT/$name.log"; then
    echo "fuzz: $name FAILED; see $OUT/$name.log and $OUT/$name-*" >&2
    tail -30 "$OUT/$name.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$OUT/$name.log" | tr '\n' ' '; echo
  fi
done
exit $status
