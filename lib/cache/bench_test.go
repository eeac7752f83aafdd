package cache

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// benchFile returns the path in env, or writes a file of size pseudo-random
// bytes into dir, with the magic that readEntry checks for name.
func benchFile(b *testing.B, env, dir, name string, size int64) string {
	b.Helper()
	if path := os.Getenv(env); path != "" {
		return path
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	w := bufio.NewWriterSize(f, 1<<20)
	chunk := make([]byte, 1<<20)
	for written := int64(0); written < size; written += int64(len(chunk)) {
		rng.Read(chunk)
		if _, err := w.Write(chunk[:min(int64(len(chunk)), size-written)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	magic, off := elfMagic, int64(0)
	if name == bzImageName {
		magic, off = bzImageMagic, bzImageMagicOffset
	}
	if _, err := f.WriteAt([]byte(magic), off); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkStore measures Store of an image and a vmlinux (without strip)
// against `cp` of the same two files into the same filesystem, and reports
// the ratio as store/cp. Set KTBUILD_BENCH_IMAGE and KTBUILD_BENCH_VMLINUX
// to use real build outputs; otherwise it generates 10 MB and 200 MB files.
func BenchmarkStore(b *testing.B) {
	src := b.TempDir()
	image := benchFile(b, "KTBUILD_BENCH_IMAGE", src, "bzImage", 10<<20)
	vmlinux := benchFile(b, "KTBUILD_BENCH_VMLINUX", src, "vmlinux", 200<<20)
	c, err := Open(filepath.Join(b.TempDir(), "cache"))
	if err != nil {
		b.Fatal(err)
	}
	cpDir := filepath.Join(c.Root, "..", "cp")

	var storeTime, cpTime time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if err := os.RemoveAll(cpDir); err != nil {
			b.Fatal(err)
		}
		if err := os.Mkdir(cpDir, 0o755); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if out, err := exec.Command("cp", image, vmlinux, cpDir).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
		cpTime += time.Since(start)
		b.StartTimer()

		start = time.Now()
		_, err := c.Store(context.Background(), StoreRequest{
			Key:         fmt.Sprintf("bench-%d", i),
			ImagePath:   image,
			VmlinuxPath: vmlinux,
			Meta:        Metadata{Source: TarballSource(), Arch: "x86_64", ImageName: "bzImage"},
		})
		storeTime += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		if err := os.RemoveAll(c.EntryDir(fmt.Sprintf("bench-%d", i))); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(cpTime.Nanoseconds())/float64(b.N), "cp-ns/op")
	b.ReportMetric(storeTime.Seconds()/cpTime.Seconds(), "store/cp")
}

// BenchmarkLookup measures Lookup of a valid entry with a 10 MB bzImage and
// a 200 MB vmlinux, the check a warm build makes before anything else.
func BenchmarkLookup(b *testing.B) {
	src := b.TempDir()
	image := benchFile(b, "KTBUILD_BENCH_IMAGE", src, "bzImage", 10<<20)
	vmlinux := benchFile(b, "KTBUILD_BENCH_VMLINUX", src, "vmlinux", 200<<20)
	c, err := Open(filepath.Join(b.TempDir(), "cache"))
	if err != nil {
		b.Fatal(err)
	}
	const key = "6.12.3-tarball-x86_64-kc1a2b3c4d"
	if _, err := c.Store(context.Background(), StoreRequest{
		Key: key, ImagePath: image, VmlinuxPath: vmlinux,
		Meta: Metadata{Source: TarballSource(), Arch: "x86_64", ImageName: "bzImage"},
	}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, ok, err := c.Lookup(key); !ok || err != nil {
			b.Fatalf("Lookup = hit %v, %v", ok, err)
		}
	}
}
