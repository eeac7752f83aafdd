package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktstr/ktbuild/internal/fakekernel"
)

// TestMain lets the test binary act as a separate kernel:build process, so
// concurrency tests race real processes on real locks.
func TestMain(m *testing.M) {
	if spec := os.Getenv("KTBUILD_TEST_BUILDER_SPEC"); spec != "" {
		os.Exit(runBuilder(spec))
	}
	os.Exit(m.Run())
}

func runBuilder(spec string) int {
	res, err := Build(context.Background(), Request{
		Spec:         spec,
		CacheDir:     os.Getenv("KTBUILD_TEST_CACHE"),
		ExtraKconfig: os.Getenv("KTBUILD_TEST_EXTRA"),
		llcLockDir:   os.Getenv("KTBUILD_TEST_LLC_DIR"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(res.ImagePath)
	return 0
}

// raceBuilders starts n builder processes of spec at once and returns each
// one's stdout and stderr.
func raceBuilders(t *testing.T, n int, spec, cacheDir string) (stdouts, stderrs []string) {
	t.Helper()
	llcDir := t.TempDir()
	stdouts, stderrs = make([]string, n), make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(),
				"KTBUILD_TEST_BUILDER_SPEC="+spec,
				"KTBUILD_TEST_CACHE="+cacheDir,
				"KTBUILD_TEST_LLC_DIR="+llcDir,
				"KTSTR_CPU_CAP=", "GORACE=atexit_sleep_ms=0")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Errorf("builder %d: %v\n%s", i, err, stderr.String())
			}
			stdouts[i], stderrs[i] = strings.TrimSpace(stdout.String()), stderr.String()
		}(i)
	}
	wg.Wait()
	return stdouts, stderrs
}

func assertOneCompile(t *testing.T, compiles int, stdouts, stderrs []string) {
	t.Helper()
	if compiles != 1 {
		t.Errorf("compiled %d times, want 1", compiles)
	}
	for i, path := range stdouts {
		if path == "" || path != stdouts[0] {
			t.Errorf("builder %d printed %q, builder 0 printed %q", i, path, stdouts[0])
		}
	}
	waited := 0
	for _, text := range stderrs {
		if strings.Contains(text, "waiting for it to finish") {
			waited++
			if !strings.Contains(text, "filled the cache while we waited") {
				t.Errorf("a builder waited but did not say the peer filled the cache:\n%s", text)
			}
		}
	}
	if waited != len(stderrs)-1 {
		t.Errorf("%d builders reported waiting, want %d", waited, len(stderrs)-1)
	}
}

func TestManyBuildersOfOneTreeCompileOnce(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{Delay: time.Second})
	stdouts, stderrs := raceBuilders(t, 4, tree, filepath.Join(t.TempDir(), "cache"))
	assertOneCompile(t, fakekernel.CompileCount(tree), stdouts, stderrs)
}

func TestManyBuildersOfOneTarballCompileOnce(t *testing.T) {
	tree := fakekernel.New(t, fakekernel.Options{Delay: time.Second})
	tarball := filepath.Join(t.TempDir(), "linux-6.12.0.tar.gz")
	tarTree(t, tree, "linux-6.12.0", tarball)
	cacheDir := filepath.Join(t.TempDir(), "cache")

	stdouts, stderrs := raceBuilders(t, 4, tarball, cacheDir)
	// Every builder extracts into its own tree, so count the compiles from
	// the stored build logs: only a builder that compiled prints make output.
	compiles := 0
	for _, text := range stderrs {
		if strings.Contains(text, "extracting") {
			compiles++
		}
	}
	assertOneCompile(t, compiles, stdouts, stderrs)
}
