package elfstrip

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ktstr/ktbuild/lib/elfstrip/internal/peakrss"
)

// Environment of the helper process that strips one file and reports its
// peak RSS; TestMain runs it when the test binary re-executes itself.
const (
	helperSrcEnv = "ELFSTRIP_HELPER_SRC"
	helperDstEnv = "ELFSTRIP_HELPER_DST"
)

func TestMain(m *testing.M) {
	if src := os.Getenv(helperSrcEnv); src != "" {
		os.Exit(runHelper(src, os.Getenv(helperDstEnv)))
	}
	os.Exit(m.Run())
}

func runHelper(src, dst string) int {
	if _, err := Strip(src, dst); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kib, err := peakrss.Read("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("peak_rss_kib=%d\n", kib)
	return 0
}

// stripPeakRSS strips src to dst in a fresh copy of the test binary and
// returns that process's peak RSS in KiB.
func stripPeakRSS(tb testing.TB, src, dst string) int64 {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperSrcEnv+"="+src, helperDstEnv+"="+dst)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("strip helper process: %v\n%s", err, stderr.String())
	}

	value, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "peak_rss_kib=")
	if !ok {
		tb.Fatalf("strip helper printed %q, want peak_rss_kib=N", out)
	}
	kib, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return kib
}

func TestStripStreamsLargeSections(t *testing.T) {
	const (
		rodataSize = 48 << 20
		debugSize  = 64 << 20
		// Loading .rodata alone would pass this; a streaming Strip stays
		// near the test binary's own few MiB.
		limitKiB = 32 << 10
	)
	src := buildFixture(t, kindObject)
	dir := filepath.Dir(src)

	blob := func(name string, size int64) string {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		return path
	}
	big := filepath.Join(dir, "big")
	run(t, dir, "objcopy", "--update-section", ".rodata="+blob("rodata.bin", rodataSize),
		"--add-section", ".debug_big="+blob("debug.bin", debugSize), src, big)

	dst := filepath.Join(t.TempDir(), "out")
	kib := stripPeakRSS(t, big, dst)
	if kib > limitKiB {
		t.Errorf("peak RSS = %d KiB while stripping a file with a %d MiB .rodata, want at most %d KiB", kib, rodataSize>>20, limitKiB)
	}

	rodata := openELF(t, dst).Section(".rodata")
	if rodata == nil || rodata.Size != rodataSize {
		t.Fatalf("output .rodata = %+v, want %d bytes", rodata, rodataSize)
	}
	t.Logf("peak RSS %d KiB", kib)
}
