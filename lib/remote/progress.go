package remote

import (
	"io"
	"sync"
)

// TransferOptions configures one pull or push.
type TransferOptions struct {
	// Progress, when not nil, receives the compressed blob bytes moved so
	// far and the total of the blobs the transfer covers: metadata.json and
	// the layers a pull downloads, or every blob of the artifact for a
	// push. Blobs the registry already has count as moved at once. It is
	// first called once the total is known, then as data flows, never
	// concurrently and never with a smaller done than before; after a
	// transfer that succeeds, the last call has done == total.
	Progress func(done, total int64)
}

// byteMeter adds up the bytes of the blobs of one transfer and passes the
// sum to a Progress callback. A nil *byteMeter counts nothing.
type byteMeter struct {
	// mu orders the callbacks, so concurrent downloads cannot report a
	// sum older than one already reported.
	mu    sync.Mutex
	fn    func(done, total int64)
	done  int64
	total int64
}

// newByteMeter returns a meter of total bytes with done counted already,
// or nil when fn is nil.
func newByteMeter(fn func(done, total int64), total, done int64) *byteMeter {
	if fn == nil {
		return nil
	}
	return &byteMeter{fn: fn, done: done, total: total}
}

// report passes the current sum to the callback.
func (m *byteMeter) report() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fn(m.done, m.total)
}

// blob returns the counter of one blob of size bytes.
func (m *byteMeter) blob(size int64) *blobMeter {
	if m == nil {
		return nil
	}
	return &blobMeter{m: m, size: size}
}

// blobMeter counts one blob, capped at its size, so a body read twice
// cannot push the sum past the total.
type blobMeter struct {
	m    *byteMeter
	size int64
	n    int64 // guarded by m.mu
}

// add counts n more bytes of the blob.
func (b *blobMeter) add(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	b.addLocked(n)
}

// finish counts the blob as moved in full, for a blob the registry had
// or one whose transfer ended without every byte passing the counter.
func (b *blobMeter) finish() {
	if b == nil {
		return
	}
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	b.addLocked(b.size - b.n)
}

func (b *blobMeter) addLocked(n int64) {
	delta := min(n, b.size-b.n)
	if delta <= 0 {
		return
	}
	b.n += delta
	b.m.done += delta
	b.m.fn(b.m.done, b.m.total)
}

// countReader counts the bytes read through it into a blobMeter.
type countReader struct {
	io.ReadCloser
	b *blobMeter
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.b.add(int64(n))
	return n, err
}
