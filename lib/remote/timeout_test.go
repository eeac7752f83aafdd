package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ktstr/ktbuild/lib/cache"
	"github.com/ktstr/ktbuild/lib/remote/registrytest"
)

// hangLimit is a generous upper bound for an operation against a broken
// registry with 1 s timeouts; the bug it guards against took 728 s.
const hangLimit = 20 * time.Second

// silentServer accepts TCP connections on loopback and never responds. It
// returns the address and a count of accepted connections.
func silentServer(t *testing.T) (string, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// newRemoteAt returns a Remote for host/kernels with opts.
func newRemoteAt(t *testing.T, host string, opts Options) *Remote {
	t.Helper()
	r, err := New(host+"/kernels", opts)
	if err != nil {
		t.Fatal(err)
	}
	r.warn = func(format string, args ...any) { t.Logf("remote warning: "+format, args...) }
	return r
}

// wantTimeout checks that err is an ErrTimeout that names the limit that ran
// out and names the variable that turns the remote cache off.
func wantTimeout(t *testing.T, err error, limit string) {
	t.Helper()
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("error = %v, want ErrTimeout", err)
	}
	for _, want := range []string{"timed out", limit, EnvRepository} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q: %v", want, err)
		}
	}
}

func TestPullSilentRegistry(t *testing.T) {
	host, accepted := silentServer(t)
	r := newRemoteAt(t, host, Options{HeaderTimeout: time.Second})
	c := openCache(t)

	start := time.Now()
	_, found, err := r.Pull(testContext(t), testKey, c)
	if took := time.Since(start); took > hangLimit {
		t.Errorf("Pull took %s against a silent registry", took)
	}
	wantTimeout(t, err, "did not respond within 1s")
	if found {
		t.Error("found = true")
	}
	if n := accepted(); n != 1 {
		t.Errorf("the silent registry got %d connections, want 1 (a timeout is not retried)", n)
	}
	if left := scratchLeft(t, c.Root); len(left) > 0 {
		t.Errorf("pull left %v in the cache root", left)
	}
}

func TestPublishSilentRegistry(t *testing.T) {
	host, accepted := silentServer(t)
	r := newRemoteAt(t, host, Options{HeaderTimeout: time.Second})
	e := storeEntry(t, openCache(t), testKey, smallEntry)

	start := time.Now()
	_, err := r.Publish(testContext(t), e)
	if took := time.Since(start); took > hangLimit {
		t.Errorf("Publish took %s against a silent registry", took)
	}
	wantTimeout(t, err, "did not respond within 1s")
	if n := accepted(); n != 1 {
		t.Errorf("the silent registry got %d connections, want 1", n)
	}
}

func TestPullRetriesBusyRegistry(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	r := newRemoteAt(t, strings.TrimPrefix(srv.URL, "http://"), Options{})

	_, _, err := r.Pull(testContext(t), testKey, openCache(t))
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Pull error = %v, want one reporting the 503", err)
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("the registry got %d requests, want 3 (two retries of a 503)", n)
	}
}

func TestNewTimeoutOptions(t *testing.T) {
	r, err := New("127.0.0.1:5000/kernels", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.headerTimeout != DefaultHeaderTimeout || r.requestTimeout != DefaultRequestTimeout {
		t.Errorf("timeouts = %s, %s, want the defaults", r.headerTimeout, r.requestTimeout)
	}
	_, err = New("127.0.0.1:5000/kernels", Options{StallTimeout: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "StallTimeout") {
		t.Errorf("New with a negative StallTimeout: error = %v, want one naming the field", err)
	}
}

// faultProxy is a loopback proxy in front of a real registry that delays
// every request, or serves chosen blobs with a fault.
type faultProxy struct {
	reg   *registrytest.Registry
	up    http.Handler
	delay time.Duration
	// blobs maps a digest to the fault served instead of that blob.
	blobs map[string]fault
	// cutUpload, when it returns true for a PUT, makes the proxy read half
	// of the request body and then drop the connection.
	cutUpload func(r *http.Request) bool

	// staleSizes maps a digest to the size that the first HEAD of that blob
	// reports instead of the registry's.
	staleSizes map[string]int64
	mu         sync.Mutex
}

// fault serves the blob data wrongly; the headers announce all of it.
type fault func(w http.ResponseWriter, r *http.Request, data []byte)

func startProxy(t *testing.T, reg *registrytest.Registry, p *faultProxy) string {
	t.Helper()
	up, err := url.Parse("http://" + reg.Host)
	if err != nil {
		t.Fatal(err)
	}
	p.reg = reg
	p.up = httputil.NewSingleHostReverseProxy(up)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.delay > 0 {
		select {
		case <-time.After(p.delay):
		case <-r.Context().Done():
			return
		}
	}
	if r.Method == http.MethodPut && p.cutUpload != nil && p.cutUpload(r) {
		io.CopyN(io.Discard, r.Body, r.ContentLength/2)
		panic(http.ErrAbortHandler)
	}
	if _, dgst, ok := strings.Cut(r.URL.Path, "/blobs/"); ok && r.Method == http.MethodHead {
		p.mu.Lock()
		size, stale := p.staleSizes[dgst]
		delete(p.staleSizes, dgst)
		p.mu.Unlock()
		if stale {
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
			w.Header().Set("Docker-Content-Digest", dgst)
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	if _, dgst, ok := strings.Cut(r.URL.Path, "/blobs/"); ok && r.Method == http.MethodGet {
		if fault := p.blobs[dgst]; fault != nil {
			data, err := os.ReadFile(p.reg.BlobPath(dgst))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Header().Set("Content-Type", "application/octet-stream")
			fault(w, r, data)
			return
		}
	}
	p.up.ServeHTTP(w, r)
}

// cutHalfway sends half the blob, then drops the connection.
func cutHalfway(w http.ResponseWriter, _ *http.Request, data []byte) {
	w.Write(data[:len(data)/2])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

// trickle sends the blob in six pieces, 250 ms apart.
func trickle(w http.ResponseWriter, r *http.Request, data []byte) {
	step := len(data)/6 + 1
	for off := 0; off < len(data); off += step {
		w.Write(data[off:min(off+step, len(data))])
		w.(http.Flusher).Flush()
		select {
		case <-time.After(250 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
}

// stallHalfway returns a fault that sends half the blob and then nothing
// until the client hangs up or release closes.
func stallHalfway(release <-chan struct{}) fault {
	return func(w http.ResponseWriter, r *http.Request, data []byte) {
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// pushEntry pushes the small test entry to reg and returns it with its
// manifest.
func pushEntry(t *testing.T, reg *registrytest.Registry) (cache.Entry, ocispec.Manifest) {
	t.Helper()
	r := newRemote(t, reg, "")
	ctx := testContext(t)
	e := storeEntry(t, openCache(t), testKey, smallEntry)
	if err := r.Push(ctx, e); err != nil {
		t.Fatal(err)
	}
	m, _, err := r.fetchManifest(ctx, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return e, m
}

func TestPullLookupDeadline(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	pushEntry(t, reg)
	// Each response comes well within HeaderTimeout, but the manifest and
	// metadata.json together take longer than RequestTimeout.
	host := startProxy(t, reg, &faultProxy{delay: 700 * time.Millisecond})
	r := newRemoteAt(t, host, Options{HeaderTimeout: 5 * time.Second, RequestTimeout: time.Second})
	c := openCache(t)

	start := time.Now()
	_, _, err := r.Pull(testContext(t), testKey, c)
	if took := time.Since(start); took > hangLimit {
		t.Errorf("Pull took %s", took)
	}
	wantTimeout(t, err, "within 1s")
	if _, hit, _ := c.Lookup(testKey); hit {
		t.Error("a timed-out pull stored an entry")
	}
}

func TestPullSlowBlobNotCut(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	pushed, m := pushEntry(t, reg)
	p := &faultProxy{blobs: map[string]fault{}}
	for _, l := range m.Layers {
		p.blobs[l.Digest.String()] = trickle
	}
	host := startProxy(t, reg, p)
	// Each layer takes about 1.5 s, longer than RequestTimeout, but never
	// stops moving for StallTimeout.
	r := newRemoteAt(t, host, Options{RequestTimeout: time.Second, StallTimeout: 5 * time.Second})

	e, found, err := r.Pull(testContext(t), testKey, openCache(t))
	if err != nil || !found {
		t.Fatalf("Pull through a slow link: found=%v err=%v", found, err)
	}
	if !bytes.Equal(mustRead(t, e.ImagePath), mustRead(t, pushed.ImagePath)) {
		t.Error("pulled image differs from the pushed one")
	}
	if !bytes.Equal(mustRead(t, e.VmlinuxPath), mustRead(t, pushed.VmlinuxPath)) {
		t.Error("pulled vmlinux differs from the pushed one")
	}
}

func TestPullBlobFault(t *testing.T) {
	cut := func(<-chan struct{}) fault { return cutHalfway }
	cases := []struct {
		name   string
		blob   func(m ocispec.Manifest) ocispec.Descriptor
		fault  func(release <-chan struct{}) fault
		kind   error
		phrase string
	}{
		{"vmlinux cut", vmlinuxLayer, cut, ErrInterrupted, "connection broke while downloading vmlinux"},
		{"metadata cut", func(m ocispec.Manifest) ocispec.Descriptor { return m.Config }, cut, ErrInterrupted, "connection broke while downloading metadata.json"},
		{"image stalls", imageLayer, stallHalfway, ErrTimeout, "made no progress for 1s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := registrytest.Start(t, registrytest.Options{})
			_, m := pushEntry(t, reg)
			release := make(chan struct{})
			p := &faultProxy{blobs: map[string]fault{tc.blob(m).Digest.String(): tc.fault(release)}}
			host := startProxy(t, reg, p)
			// Runs before the proxy's Close, which waits for handlers.
			t.Cleanup(func() { close(release) })
			r := newRemoteAt(t, host, Options{StallTimeout: time.Second})
			c := openCache(t)

			start := time.Now()
			_, found, err := r.Pull(testContext(t), testKey, c)
			if took := time.Since(start); took > hangLimit {
				t.Errorf("Pull took %s", took)
			}
			t.Logf("pull error: %v", err)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("Pull error = %v, want %v", err, tc.kind)
			}
			if errors.Is(err, ErrCorrupt) {
				t.Errorf("a broken transfer is reported as a corrupt artifact: %v", err)
			}
			if !strings.Contains(err.Error(), tc.phrase) {
				t.Errorf("error does not contain %q: %v", tc.phrase, err)
			}
			if found {
				t.Error("found = true")
			}
			if _, err := os.Stat(c.EntryDir(testKey)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("entry directory exists after a failed pull (stat error %v)", err)
			}
			if left := scratchLeft(t, c.Root); len(left) > 0 {
				t.Errorf("pull left %v in the cache root", left)
			}
		})
	}
}

// The blob fault proxy must not serve a whole blob by mistake: a cut
// stream that still matched would make TestPullBlobFault pass vacuously.
func TestCutHalfwayIsShort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data := bytes.Repeat([]byte("k"), 4096)
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		cutHalfway(w, r, data)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err == nil {
		t.Errorf("read %d bytes with no error, want an unexpected EOF", buf.Len())
	}
}
