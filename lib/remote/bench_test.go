package remote

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ktstr/ktbuild/lib/cache"
	"github.com/ktstr/ktbuild/lib/remote/registrytest"
)

// BenchmarkPull measures how long an empty cache root takes to get a usable
// entry from a loopback registry: download, digest checks, decompression
// and cache.Store.
//
// With KTBUILD_BENCH_ENTRY set to an entry directory ({root}/{key}), that
// entry is copied into a scratch cache and pushed; the directory itself is
// only read. Without it, a made-up entry of a 12 MiB image and a 24 MiB
// vmlinux is used. Extra metrics: entry-bytes (the entry's files),
// pushed-bytes (all blobs of the artifact, compressed), their ratio, and
// push-s (one push into an empty registry, compression included).
func BenchmarkPull(b *testing.B) {
	reg := registrytest.Start(b, registrytest.Options{})
	r := newRemote(b, reg, "")
	ctx := context.Background()

	src := openCache(b)
	var e cache.Entry
	if dir := os.Getenv("KTBUILD_BENCH_ENTRY"); dir != "" {
		e = copyEntry(b, src, dir)
	} else {
		e = storeEntry(b, src, testKey, entryFiles{image: 12 << 20, vmlinux: 24 << 20, stripped: true})
	}
	entryBytes := filesSize(b, e.Dir)

	start := time.Now()
	pub, err := r.Publish(ctx, e)
	if err != nil {
		b.Fatal(err)
	}
	pushTime := time.Since(start)

	scratch := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		root := filepath.Join(scratch, "root")
		c, err := cache.Open(root)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		got, found, err := r.Pull(ctx, e.Key, c)

		b.StopTimer()
		if err != nil || !found {
			b.Fatalf("Pull: found=%v err=%v", found, err)
		}
		if got.Meta.BuiltAt != e.Meta.BuiltAt {
			b.Fatalf("pulled built_at %s, want %s", got.Meta.BuiltAt, e.Meta.BuiltAt)
		}
		if err := os.RemoveAll(root); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(entryBytes), "entry-bytes")
	b.ReportMetric(float64(pub.Size), "pushed-bytes")
	b.ReportMetric(float64(pub.Size)/float64(entryBytes), "pushed/entry")
	b.ReportMetric(pushTime.Seconds(), "push-s")
}

// copyEntry stores a copy of the entry directory dir in c, reading dir only.
func copyEntry(b *testing.B, c *cache.Cache, dir string) cache.Entry {
	b.Helper()
	meta, err := cache.DecodeMetadata(mustRead(b, filepath.Join(dir, cache.MetadataName)))
	if err != nil {
		b.Fatalf("KTBUILD_BENCH_ENTRY=%s: %v", dir, err)
	}
	req := cache.StoreRequest{
		Key:       filepath.Base(dir),
		ImagePath: filepath.Join(dir, meta.ImageName),
		Meta:      meta,
	}
	if vmlinux := filepath.Join(dir, cache.VmlinuxName); meta.HasVmlinux {
		req.VmlinuxPath = vmlinux
		if meta.VmlinuxStripped {
			req.Strip = copyForTest
		}
	}
	e, err := c.Store(context.Background(), req)
	if err != nil {
		b.Fatalf("KTBUILD_BENCH_ENTRY=%s: %v", dir, err)
	}
	return e
}

// filesSize returns the summed size of the regular files directly in dir.
func filesSize(b *testing.B, dir string) int64 {
	b.Helper()
	dirents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, d := range dirents {
		info, err := d.Info()
		if err != nil {
			b.Fatal(err)
		}
		if info.Mode().IsRegular() {
			total += info.Size()
		}
	}
	return total
}
