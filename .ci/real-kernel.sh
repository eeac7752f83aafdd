#!/usr/bin/env bash
# The real-kernel check: build Debian's linux-source-6.12 with a compiled
# magefile into a temporary cache, build it again and require a cache hit
# with no compile, then boot the cached image under QEMU (TCG) and require
# /sys/kernel/sched_ext. About 15-20 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

tarball=${KTBUILD_REAL_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
work=$(mktemp -d /var/tmp/ktbuild-real.XXXXXX)
trap 'rm -rf "$work"' EXIT
export KTSTR_CACHE_DIR="$work/cache"
mage_bin="$work/mage-ktbuild"

go run mage.go -compile "$mage_bin"

echo "real-kernel: first build of $tarball"
start=$(date +%s)
image=$("$mage_bin" kernel:build -source="$tarball" -cpucap=2 2> >(tee "$work/build1.err" >&2))
echo "real-kernel: built $image in $(( $(date +%s) - start )) s"
test -s "$image"

echo "real-kernel: second build must hit the cache"
start_ns=$(date +%s%N)
image2=$("$mage_bin" kernel:build -source="$tarball" -cpucap=2 2>"$work/build2.err")
elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
cat "$work/build2.err" >&2
if [ "$image2" != "$image" ]; then
	echo "real-kernel: FAIL: second build printed $image2, first printed $image" >&2
	exit 1
fi
if ! grep -q 'cache hit' "$work/build2.err"; then
	echo "real-kernel: FAIL: second build did not report a cache hit" >&2
	exit 1
fi
echo "real-kernel: cache hit in ${elapsed_ms} ms"

"$mage_bin" cache:list
entry_dir=$(dirname "$image")
bpftool btf dump file "$entry_dir/vmlinux" | grep -q "'scx_bpf_kick_cpu'" ||
	{ echo "real-kernel: FAIL: stripped vmlinux has no scx_bpf_kick_cpu in its BTF" >&2; exit 1; }

echo "real-kernel: booting $image under QEMU"
"$mage_bin" kernel:smoke -source="$tarball" -accel=tcg

"$mage_bin" kernel:clean -force
echo "real-kernel: PASS"
