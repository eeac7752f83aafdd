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
# CI has no route to kernel.org, so skip it rather than wait for a timeout.
export KTBUILD_OFFLINE=1
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
# Written to a file first: grep -q would close the pipe early, and under
# pipefail bpftool's SIGPIPE would read as a failure.
bpftool btf dump file "$entry_dir/vmlinux" >"$work/btf.txt"
grep -q "FUNC 'scx_bpf_kick_cpu'" "$work/btf.txt" ||
	{ echo "real-kernel: FAIL: stripped vmlinux has no scx_bpf_kick_cpu in its BTF" >&2; exit 1; }
echo "real-kernel: stripped vmlinux BTF has $(grep -c '^\[' "$work/btf.txt") types, scx_bpf_kick_cpu among them"

echo "real-kernel: booting $image under QEMU"
"$mage_bin" kernel:smoke -source="$tarball" -accel=tcg

# The smoke package's real-kernel tests: this kernel (sched_ext disabled,
# BTF present, a forced panic), and Debian's 6.1 kernel, which has no
# sched_ext and must be reported as missing CONFIG_SCHED_CLASS_EXT.
noscx_dir="$work/debian-kernel"
mkdir -p "$noscx_dir"
deb_pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
(cd "$noscx_dir" && apt-get download -q "$deb_pkg" && dpkg-deb -x ./*.deb .)
noscx_image=$(ls "$noscx_dir"/boot/vmlinuz-* | head -n 1)
KTBUILD_SMOKE_IMAGE="$image" KTBUILD_SMOKE_NOSCX_IMAGE="$noscx_image" \
	go test -count=1 -run 'TestRealKernel' -v ./lib/smoke

"$mage_bin" kernel:clean -force
echo "real-kernel: PASS"
