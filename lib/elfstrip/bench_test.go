package elfstrip

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkStrip strips the vmlinux named by KTBUILD_BENCH_VMLINUX and runs
// objcopy --strip-debug on it in the same iterations, then reports Strip's
// time and output size as ratios of objcopy's, and Strip's peak RSS.
//
//	KTBUILD_BENCH_VMLINUX=/path/to/vmlinux go test -run '^$' -bench Strip ./lib/elfstrip
//
// Without the variable it measures a small gcc-built fixture, where
// objcopy's process start-up dominates the time ratio. With it, the
// benchmark also checks the stripped vmlinux as the tests check fixtures.
func BenchmarkStrip(b *testing.B) {
	requireTools(b, "objcopy")
	src := os.Getenv("KTBUILD_BENCH_VMLINUX")
	haveVmlinux := src != ""
	if !haveVmlinux {
		src = buildFixture(b, kindExecutable)
		b.Log("KTBUILD_BENCH_VMLINUX is unset, so this measures a small fixture; set it to a real vmlinux for meaningful ratios")
	}
	dir := b.TempDir()
	dst, ref := filepath.Join(dir, "stripped"), filepath.Join(dir, "objcopy")

	var stripTime, objcopyTime time.Duration
	var res Result
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		var err error
		res, err = Strip(src, dst)
		stripTime += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		start = time.Now()
		if out, err := exec.Command("objcopy", "--strip-debug", src, ref).CombinedOutput(); err != nil {
			b.Fatalf("objcopy --strip-debug %s: %v\n%s", src, err, out)
		}
		objcopyTime += time.Since(start)
		b.StartTimer()
	}
	b.StopTimer()

	st, err := os.Stat(ref)
	if err != nil {
		b.Fatal(err)
	}
	peakKiB := stripPeakRSS(b, src, dst)

	b.ReportMetric(float64(stripTime)/float64(objcopyTime), "time-ratio")
	b.ReportMetric(float64(res.OutSize)/float64(st.Size()), "size-ratio")
	b.ReportMetric(float64(objcopyTime.Milliseconds())/float64(b.N), "objcopy-ms/op")
	b.ReportMetric(float64(res.OutSize)/1e6, "out-MB")
	b.ReportMetric(float64(st.Size())/1e6, "objcopy-MB")
	b.ReportMetric(float64(peakKiB)/1024, "peak-RSS-MiB")
	if res.Fallback {
		b.Logf("Strip used the fallback mode: %s", res.FallbackReason)
	}

	if haveVmlinux {
		checkVmlinux(b, src, dst)
	}
}

// checkVmlinux runs the main-mode checks of the tests on a stripped real
// vmlinux: readelf, llvm-readelf, nm and bpftool read it cleanly, and its
// sections, symbols and BTF match the original's.
func checkVmlinux(tb testing.TB, src, dst string) {
	tb.Helper()
	requireTools(tb, "nm", "bpftool")
	checkReadelfClean(tb, dst)
	checkNMSame(tb, src, dst)
	checkMainSections(tb, src, dst,
		[]string{".symtab", ".strtab", ".shstrtab", ".BTF", ".rodata"},
		[]string{".text", ".data", ".data..percpu", ".init.text", ".init.data"})
	checkSymbols(tb, src, dst, kfuncName, "runqueues", "jiffies", "kernel_config_data")
	checkLocalCount(tb, dst)
	checkBTF(tb, src, dst)
	checkBpftool(tb, dst)
}
