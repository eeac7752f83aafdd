package source

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// Benchmarks time the peer tool in the same run and report ours/peer as
// "ratio", so that load from other work on the machine affects both sides.
//
//	KTBUILD_BENCH_TREE=/path/to/kernel/git/tree go test -run '^$' -bench Probe ./lib/source/
//	KTBUILD_BENCH_TARBALL=/usr/src/linux-source-6.12.tar.xz go test -run '^$' -bench Extract -benchtime 3x ./lib/source/

// BenchmarkProbe compares ProbeGit with `git status --porcelain
// --untracked-files=no` on the git tree named by KTBUILD_BENCH_TREE, and
// reports the peak Go heap of one probe.
func BenchmarkProbe(b *testing.B) {
	tree := os.Getenv("KTBUILD_BENCH_TREE")
	if tree == "" {
		b.Skip("set KTBUILD_BENCH_TREE to a git worktree of a kernel to run this benchmark")
	}
	state, err := ProbeGit(tree)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("state: %+v", state)

	var ours, peer time.Duration
	for b.Loop() {
		start := time.Now()
		cmd := exec.Command("git", "status", "--porcelain", "--untracked-files=no")
		cmd.Dir = tree
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git status: %v\n%s", err, out)
		}
		peer += time.Since(start)

		start = time.Now()
		if _, err := ProbeGit(tree); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
	}
	b.ReportMetric(float64(ours.Microseconds())/float64(b.N)/1000, "probe-ms")
	b.ReportMetric(float64(peer.Microseconds())/float64(b.N)/1000, "git-ms")
	b.ReportMetric(float64(ours)/float64(peer), "ratio")
	b.ReportMetric(float64(peakHeap(b, tree))/(1<<20), "peak-heap-MiB")
}

// peakHeap returns the most heap in use seen while one probe runs, sampled
// every 200µs after a GC.
func peakHeap(b *testing.B, tree string) uint64 {
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var top uint64
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			top = max(top, ms.HeapInuse)
			select {
			case <-done:
				peak <- top
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	if _, err := ProbeGit(tree); err != nil {
		b.Fatal(err)
	}
	close(done)
	return <-peak
}

// BenchmarkExtract compares Extract with `tar xf` on the tarball named by
// KTBUILD_BENCH_TARBALL, both writing under one temp dir, in alternating
// order. On ext4 without a journal, creating files shortly after deleting
// many is slower, because the inode allocator skips recently freed inodes.
// So the trees are deleted only after the timed runs, and two runs of this
// benchmark should be a few minutes apart.
func BenchmarkExtract(b *testing.B) {
	tarball := os.Getenv("KTBUILD_BENCH_TARBALL")
	if tarball == "" {
		b.Skip("set KTBUILD_BENCH_TARBALL to a kernel tarball to run this benchmark")
	}
	compression := TarballCompression(tarball)
	if compression == "" {
		b.Fatalf("%s: not a .tar.xz/.tar.gz/.tar.bz2/.tar.zst file", tarball)
	}
	parent := b.TempDir()

	runTar := func() time.Duration {
		dst, err := os.MkdirTemp(parent, "tar-")
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		cmd := exec.Command("tar", "xf", tarball, "-C", dst)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("tar xf: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	runOurs := func() time.Duration {
		f, err := os.Open(tarball)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		start := time.Now()
		if _, err := Extract(context.Background(), f, compression, parent); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}

	var ours, peer time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			peer += runTar()
			ours += runOurs()
		} else {
			ours += runOurs()
			peer += runTar()
		}
		i++
	}
	b.ReportMetric(ours.Seconds()/float64(b.N), "extract-s")
	b.ReportMetric(peer.Seconds()/float64(b.N), "tar-s")
	b.ReportMetric(float64(ours)/float64(peer), "ratio")
}
