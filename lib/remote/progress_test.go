package remote

import (
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ktstr/ktbuild/lib/remote/registrytest"
)

// bigEntry has layers of several hundred kilobytes compressed, so each
// blob takes many reads and the callback receives the bytes as they flow.
var bigEntry = entryFiles{image: 512 << 10, vmlinux: 2 << 20}

// progressLog records the calls of a Progress callback.
type progressLog struct {
	mu    sync.Mutex
	calls [][2]int64
}

func (l *progressLog) record(done, total int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, [2]int64{done, total})
}

// check asserts that total never changes and equals want, that done never
// falls, that the last call has done == total, and that some call fell
// strictly between two blob boundaries, which only counting reads yields.
func (l *progressLog) check(t *testing.T, want int64, boundaries []int64) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.calls) == 0 {
		t.Fatal("Progress was never called")
	}
	var prev int64
	midBlob := false
	for i, c := range l.calls {
		done, total := c[0], c[1]
		if total != want {
			t.Fatalf("call %d: total = %d, want %d", i, total, want)
		}
		if done < prev || done > total {
			t.Fatalf("call %d: done = %d after %d, total %d", i, done, prev, total)
		}
		prev = done
		if !isBoundary(done, boundaries) {
			midBlob = true
		}
	}
	if last := l.calls[len(l.calls)-1]; last[0] != last[1] {
		t.Errorf("last call: done = %d, want total %d", last[0], last[1])
	}
	if !midBlob {
		t.Errorf("no call between blob boundaries %v, so bytes are not reported as they flow: %v", boundaries, l.calls)
	}
}

// isBoundary reports whether done is the sum of some blob sizes, in
// either order of the two layers.
func isBoundary(done int64, sizes []int64) bool {
	var sums func(i int, acc int64) bool
	sums = func(i int, acc int64) bool {
		if acc == done {
			return true
		}
		if i == len(sizes) {
			return false
		}
		return sums(i+1, acc+sizes[i]) || sums(i+1, acc)
	}
	return sums(0, 0)
}

// blobSizes returns the sizes of the config and layers of m.
func blobSizes(m ocispec.Manifest) (sizes []int64, sum int64) {
	sizes = append(sizes, m.Config.Size)
	for _, l := range m.Layers {
		sizes = append(sizes, l.Size)
	}
	for _, s := range sizes {
		sum += s
	}
	return sizes, sum
}

func TestPublishProgress(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	r := newRemote(t, reg, "")
	ctx := testContext(t)
	e := storeEntry(t, openCache(t), testKey, bigEntry)

	var log progressLog
	pub, err := r.PublishWith(ctx, e, TransferOptions{Progress: log.record})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := r.fetchManifest(ctx, testKey)
	if err != nil {
		t.Fatal(err)
	}
	sizes, sum := blobSizes(m)
	if pub.Size != sum {
		t.Errorf("Published.Size = %d, blobs of the manifest sum to %d", pub.Size, sum)
	}
	log.check(t, sum, sizes)

	// A second push sends nothing, yet ends at the total too.
	var again progressLog
	if _, err := r.PublishWith(ctx, e, TransferOptions{Progress: again.record}); err != nil {
		t.Fatal(err)
	}
	if last := again.calls[len(again.calls)-1]; last != [2]int64{sum, sum} {
		t.Errorf("push of blobs the registry has: last call %v, want done = total = %d", last, sum)
	}
}

func TestPullProgress(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	r := newRemote(t, reg, "")
	ctx := testContext(t)
	if err := r.Push(ctx, storeEntry(t, openCache(t), testKey, bigEntry)); err != nil {
		t.Fatal(err)
	}
	m, _, err := r.fetchManifest(ctx, testKey)
	if err != nil {
		t.Fatal(err)
	}
	sizes, sum := blobSizes(m)

	var log progressLog
	if _, found, err := r.PullWith(ctx, testKey, openCache(t), TransferOptions{Progress: log.record}); err != nil || !found {
		t.Fatalf("PullWith: found=%v err=%v", found, err)
	}
	log.check(t, sum, sizes)

	var missing progressLog
	if _, found, err := r.PullWith(ctx, "6.0.0-tarball-x86_64-kc00000000", openCache(t), TransferOptions{Progress: missing.record}); err != nil || found {
		t.Fatalf("PullWith of a missing tag: found=%v err=%v", found, err)
	}
	if len(missing.calls) > 0 {
		t.Errorf("pull of a missing tag reported progress %v", missing.calls)
	}
}
