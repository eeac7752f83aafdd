package remote

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ktstr/ktbuild/lib/cache"
	"github.com/ktstr/ktbuild/lib/remote/registrytest"
)

// testTimeout bounds each registry operation of a test, so a hung registry
// fails the test instead of stalling the run.
const testTimeout = 30 * time.Second

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func openCache(t testing.TB) *cache.Cache {
	t.Helper()
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// entryFiles are the sizes of a test entry's files; 0 means no vmlinux.
type entryFiles struct {
	image, vmlinux int
	stripped       bool
}

var smallEntry = entryFiles{image: 6 << 10, vmlinux: 48 << 10, stripped: true}

// storeEntry stores a made-up kernel under key and returns the entry. The
// file contents mix random and repeated bytes, like real kernels, so the
// compression is neither trivial nor useless.
func storeEntry(t testing.TB, c *cache.Cache, key string, files entryFiles) cache.Entry {
	t.Helper()
	src := t.TempDir()
	image := filepath.Join(src, "bzImage")
	writeKernelBytes(t, image, files.image, 1, 0x202, "HdrS")
	req := cache.StoreRequest{
		Key:       key,
		ImagePath: image,
		Meta:      testMetadata(),
		Warn:      func(format string, args ...any) { t.Logf("store warning: "+format, args...) },
	}
	if files.vmlinux > 0 {
		req.VmlinuxPath = filepath.Join(src, "vmlinux")
		writeKernelBytes(t, req.VmlinuxPath, files.vmlinux, 2, 0, "\x7fELF")
		if files.stripped {
			// Stands in for the ELF strip: the test checks that the
			// stripped flag, not the stripping, survives the round trip.
			req.Strip = copyForTest
		}
	}
	e, err := c.Store(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func testMetadata() cache.Metadata {
	version := "6.12.9"
	configHash := "0badc0de"
	kconfigHash := "1a2b3c4d"
	extra := "5e6f7a8b"
	size := int64(123456789)
	mtime := int64(1700000000)
	return cache.Metadata{
		Version:                &version,
		Source:                 cache.LocalSource("/src/linux", "abc1234"),
		Arch:                   "x86_64",
		ImageName:              "bzImage",
		ConfigHash:             &configHash,
		BuiltAt:                "2026-01-02T03:04:05Z",
		KtstrKconfigHash:       &kconfigHash,
		SourceVmlinuxSize:      &size,
		SourceVmlinuxMtimeSecs: &mtime,
		ExtraKconfigHash:       &extra,
		Build: &cache.BuildFacts{
			MakeJobs: 8, ConfigureSecs: 3.5, BuildSecs: 812.25, StoreSecs: 1.5,
			Compiler: "gcc (Debian 14.2.0-19) 14.2.0", Pahole: "v1.29", Objects: 4321,
		},
	}
}

// writeKernelBytes writes size bytes to path with magic at offset off,
// because the cache checks a stored bzImage's boot header and a vmlinux's
// ELF header.
func writeKernelBytes(t testing.TB, path string, size int, seed uint64, off int, magic string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	var b bytes.Buffer
	for b.Len() < size {
		if rng.IntN(2) == 0 {
			chunk := make([]byte, 256)
			for i := range chunk {
				chunk[i] = byte(rng.Uint32())
			}
			b.Write(chunk)
		} else {
			b.WriteString(strings.Repeat("\x00\x90sched_ext", 25))
		}
	}
	data := b.Bytes()[:size]
	if off+len(magic) > size {
		t.Fatalf("writeKernelBytes: %d bytes leave no room for the magic at %#x", size, off)
	}
	copy(data[off:], magic)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyForTest(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// newRemote returns a Remote for the repository "kernels" of reg, with
// credentials from the Docker config in dockerConfigDir ("" for none).
func newRemote(t testing.TB, reg *registrytest.Registry, dockerConfigDir string) *Remote {
	t.Helper()
	env := map[string]string{
		EnvRepository: reg.Host + "/kernels",
		"HOME":        t.TempDir(),
	}
	if dockerConfigDir != "" {
		env["DOCKER_CONFIG"] = dockerConfigDir
	}
	r, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	r.warn = func(format string, args ...any) { t.Logf("remote warning: "+format, args...) }
	return r
}

// scratchLeft lists the names under root that a push, pull or store left
// behind: scratch directories and store directories.
func scratchLeft(t testing.TB, root string) []string {
	t.Helper()
	dirents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, d := range dirents {
		if strings.HasPrefix(d.Name(), workDirPrefix) || strings.HasPrefix(d.Name(), ".tmp-") {
			left = append(left, d.Name())
		}
	}
	return left
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
