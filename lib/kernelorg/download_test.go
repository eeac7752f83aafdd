package kernelorg

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktstr/ktbuild/lib/kernelorg/kernelorgtest"
)

// assertNothingLeft fails when parent holds anything after a failed
// download.
func assertNothingLeft(t *testing.T, parent string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in %s: %s", parent, e.Name())
	}
}

func assertMentions(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", wants)
	}
	t.Logf("error: %v", err)
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func readTreeFile(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestDownloadRelease(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	tarball := srv.AddRelease(t, "6.12.3")
	parent := t.TempDir()

	var mu sync.Mutex
	var calls int
	var lastDone, lastTotal int64
	dir, err := c.Download(context.Background(), "6.12.3", parent, func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if done < lastDone {
			t.Errorf("progress went backwards: %d after %d", done, lastDone)
		}
		calls++
		lastDone, lastTotal = done, total
	})
	if err != nil {
		t.Fatal(err)
	}

	if !strings.HasPrefix(dir, parent+string(filepath.Separator)) {
		t.Errorf("dir %s is not under %s", dir, parent)
	}
	if filepath.Base(dir) != "linux-6.12.3" {
		t.Errorf("dir %s is not the tarball's top directory", dir)
	}
	if got := readTreeFile(t, dir, "Makefile"); !strings.Contains(got, "SUBLEVEL = 3") {
		t.Errorf("Makefile = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "Kconfig")); err != nil {
		t.Error(err)
	}
	if calls == 0 || lastDone != int64(len(tarball)) || lastTotal != int64(len(tarball)) {
		t.Errorf("progress: %d calls, last %d/%d, want %d/%d", calls, lastDone, lastTotal, len(tarball), len(tarball))
	}

	reqs := srv.Requests()
	if countPrefix(reqs, "GET /pub/linux/kernel/v6.x/sha256sums.asc") != 1 {
		t.Errorf("sums not fetched once: %q", reqs)
	}
	if countPrefix(reqs, "GET /pub/linux/kernel/v6.x/linux-6.12.3.tar.xz") != 1 {
		t.Errorf("tarball not fetched once: %q", reqs)
	}
}

func TestDownloadLatestAndPrefix(t *testing.T) {
	srv, c := newServer(t,
		kernelorgtest.Row{Moniker: "stable", Version: "6.12.9"},
		kernelorgtest.Row{Moniker: "longterm", Version: "6.6.64"})
	srv.AddRelease(t, "6.12.9")
	srv.AddRelease(t, "6.6.64")

	latest, err := c.LatestStable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	prefix, err := c.Resolve(context.Background(), "6.6")
	if err != nil {
		t.Fatal(err)
	}
	for version, sublevel := range map[string]string{latest: "SUBLEVEL = 9", prefix: "SUBLEVEL = 64"} {
		dir, err := c.Download(context.Background(), version, t.TempDir(), nil)
		if err != nil {
			t.Fatalf("Download(%s): %v", version, err)
		}
		if got := readTreeFile(t, dir, "Makefile"); !strings.Contains(got, sublevel) {
			t.Errorf("Download(%s) Makefile = %q, want %s", version, got, sublevel)
		}
	}
}

func TestDownloadSeriesFirstRelease(t *testing.T) {
	srv, c := newServer(t, kernelorgtest.Row{Moniker: "mainline", Version: "6.13"})
	srv.AddRelease(t, "6.13")
	dir, err := c.Download(context.Background(), "6.13", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != "linux-6.13" {
		t.Errorf("dir = %s", dir)
	}
}

func TestDownloadRC(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	srv.AddRelease(t, "6.13-rc2")
	parent := t.TempDir()

	dir, err := c.Download(context.Background(), "6.13-rc2", parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readTreeFile(t, dir, "Makefile"); !strings.Contains(got, "EXTRAVERSION = -rc2") {
		t.Errorf("Makefile = %q", got)
	}
	reqs := srv.Requests()
	if n := countPrefix(reqs, "GET /pub/"); n != 0 {
		t.Errorf("rc download touched /pub (sums) %d times: %q", n, reqs)
	}
	if n := countPrefix(reqs, "GET /torvalds/t/linux-6.13-rc2.tar.gz"); n != 1 {
		t.Errorf("rc tarball fetched %d times: %q", n, reqs)
	}
}

func TestDownloadNotFoundNamesNewest(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	srv.AddRelease(t, "6.12.3")
	srv.SetSum(6, "linux-6.12.99.tar.xz", strings.Repeat("0", 64))
	parent := t.TempDir()

	_, err := c.Download(context.Background(), "6.12.99", parent, nil)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
	assertMentions(t, err, srv.URL+"/pub/linux/kernel/v6.x/linux-6.12.99.tar.xz", "newest 6.12 release is 6.12.3", "-version=6.12.3")
	assertNothingLeft(t, parent)
}

func TestDownloadNotFoundUnlistedSeries(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	srv.SetSum(6, "linux-6.8.99.tar.xz", strings.Repeat("0", 64))
	parent := t.TempDir()

	_, err := c.Download(context.Background(), "6.8.99", parent, nil)
	assertMentions(t, err, "linux-6.8.99.tar.xz", "does not list series 6.8", "-version=6.8")
	assertNothingLeft(t, parent)
}

func TestDownloadNotFoundRC(t *testing.T) {
	_, c := newServer(t, standardRows...)
	parent := t.TempDir()
	_, err := c.Download(context.Background(), "6.13-rc9", parent, nil)
	assertMentions(t, err, "linux-6.13-rc9.tar.gz", "mainline release is 6.13-rc2")
	assertNothingLeft(t, parent)
}

func TestDownloadHTML(t *testing.T) {
	cases := map[string]struct{ contentType, body string }{
		"content type": {"text/html; charset=utf-8", "\xfd7zXZ\x00"},
		"leading tag":  {"application/x-xz", "\n  <!DOCTYPE html><title>Sign in</title>"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv, c := newServer(t, standardRows...)
			srv.AddRelease(t, "6.12.3")
			srv.SetFile(kernelorgtest.TarballPath("6.12.3"), []byte(tc.body), tc.contentType)
			parent := t.TempDir()

			_, err := c.Download(context.Background(), "6.12.3", parent, nil)
			assertMentions(t, err, srv.URL+"/pub/linux/kernel/v6.x/linux-6.12.3.tar.xz", "HTML page", BaseURLEnv)
			assertNothingLeft(t, parent)
		})
	}
}

func TestDownloadHTTPError(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	srv.AddRelease(t, "6.12.3")
	srv.Handle(kernelorgtest.TarballPath("6.12.3"), func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusBadGateway)
	})
	parent := t.TempDir()

	_, err := c.Download(context.Background(), "6.12.3", parent, nil)
	assertMentions(t, err, "linux-6.12.3.tar.xz", "502", "try again later")
	assertNothingLeft(t, parent)
}

func TestDownloadTruncated(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	tarball := srv.AddRelease(t, "6.12.3")
	srv.Handle(kernelorgtest.TarballPath("6.12.3"), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-xz")
		w.Header().Set("Content-Length", fmt.Sprint(len(tarball)+4096))
		w.Write(tarball)
	})
	parent := t.TempDir()

	_, err := c.Download(context.Background(), "6.12.3", parent, nil)
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("err = %v, want ErrUnreachable", err)
	}
	assertMentions(t, err, "linux-6.12.3.tar.xz", "truncated", fmt.Sprintf("after %d of %d bytes", len(tarball), len(tarball)+4096), "run again")
	assertNothingLeft(t, parent)
}

// hangUp sends a chunked body and drops the connection after the
// first half, as a server that dies mid-stream does.
func hangUp(t *testing.T, data []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		half := data[:len(data)/2]
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/x-xz\r\nTransfer-Encoding: chunked\r\n\r\n")
		fmt.Fprintf(buf, "%x\r\n", len(data))
		buf.Write(half)
		buf.Flush()
	}
}

func TestDownloadServerHangsUp(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	tarball := srv.AddRelease(t, "6.12.3")
	srv.Handle(kernelorgtest.TarballPath("6.12.3"), hangUp(t, tarball))
	parent := t.TempDir()

	_, err := c.Download(context.Background(), "6.12.3", parent, nil)
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("err = %v, want ErrUnreachable", err)
	}
	assertMentions(t, err, "linux-6.12.3.tar.xz", "broke off", "closed the connection")
	assertNothingLeft(t, parent)
}

// TestDownloadServerHangsUpNoLength covers a body with neither a length nor
// chunking, where the hang-up reads as a clean end of file.
func TestDownloadServerHangsUpNoLength(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	tarball := srv.AddRelease(t, "6.12.3")
	srv.Handle(kernelorgtest.TarballPath("6.12.3"), func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/x-xz\r\nConnection: close\r\n\r\n")
		buf.Write(tarball[:len(tarball)/2])
		buf.Flush()
	})
	parent := t.TempDir()

	_, err := c.Download(context.Background(), "6.12.3", parent, nil)
	assertMentions(t, err, "extracting", "linux-6.12.3.tar.xz")
	assertNothingLeft(t, parent)
}

func TestDownloadChecksumMismatch(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	srv.AddRelease(t, "6.12.3")
	wrong := strings.Repeat("ab", 32)
	srv.SetSum(6, "linux-6.12.3.tar.xz", wrong)
	parent := t.TempDir()

	_, err := c.Download(context.Background(), "6.12.3", parent, nil)
	assertMentions(t, err, "SHA-256", "linux-6.12.3.tar.xz", wrong, "sha256sums.asc", "corrupt")
	assertNothingLeft(t, parent)
}

func TestDownloadMissingSumLine(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	srv.AddRelease(t, "6.12.3")
	srv.AddRelease(t, "6.12.2")
	srv.DeleteSum(6, "linux-6.12.3.tar.xz")
	parent := t.TempDir()

	_, err := c.Download(context.Background(), "6.12.3", parent, nil)
	assertMentions(t, err, "no SHA-256 line for linux-6.12.3.tar.xz", "sha256sums.asc", "-source=PATH")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
	if n := countPrefix(srv.Requests(), "GET /pub/linux/kernel/v6.x/linux-"); n != 0 {
		t.Errorf("tarball fetched %d times despite no checksum to verify it", n)
	}
	assertNothingLeft(t, parent)
}

func TestDownloadMissingSumsFile(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	srv.AddRelease(t, "6.12.3")
	srv.Handle(kernelorgtest.SumsPath(6), http.NotFound)
	parent := t.TempDir()

	_, err := c.Download(context.Background(), "6.12.3", parent, nil)
	assertMentions(t, err, "sha256sums.asc not found", "cannot be verified")
	assertNothingLeft(t, parent)
}

func TestDownloadCorruptArchive(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	srv.AddRelease(t, "6.12.3")
	garbage := []byte("\xfd7zXZ\x00 this is not really xz data at all")
	srv.SetFile(kernelorgtest.TarballPath("6.12.3"), garbage, "application/x-xz")
	parent := t.TempDir()

	_, err := c.Download(context.Background(), "6.12.3", parent, nil)
	assertMentions(t, err, "extracting", "linux-6.12.3.tar.xz")
	assertNothingLeft(t, parent)
}

func TestDownloadStalled(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	tarball := srv.AddRelease(t, "6.12.3")
	srv.Handle(kernelorgtest.TarballPath("6.12.3"), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-xz")
		w.Header().Set("Content-Length", fmt.Sprint(len(tarball)))
		w.Write(tarball[:len(tarball)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	c.StallTimeout = 200 * time.Millisecond
	parent := t.TempDir()

	_, err := c.Download(context.Background(), "6.12.3", parent, nil)
	assertMentions(t, err, "linux-6.12.3.tar.xz", "stalled", "200ms")
	assertNothingLeft(t, parent)
}

func TestDownloadCanceled(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	tarball := srv.AddRelease(t, "6.12.3")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv.Handle(kernelorgtest.TarballPath("6.12.3"), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-xz")
		w.Header().Set("Content-Length", fmt.Sprint(len(tarball)))
		w.Write(tarball[:len(tarball)/2])
		w.(http.Flusher).Flush()
		cancel()
		<-r.Context().Done()
	})
	parent := t.TempDir()

	_, err := c.Download(ctx, "6.12.3", parent, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	assertNothingLeft(t, parent)
}

func TestDownloadInvalidVersion(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	_, err := c.Download(context.Background(), "latest", t.TempDir(), nil)
	assertMentions(t, err, `"latest"`)
	if srv.RequestCount() != 0 {
		t.Error("an invalid version sent requests")
	}
}

func TestDownloadUnpublishedReleaseSaysNotFound(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	srv.AddRelease(t, "6.12.3")
	parent := t.TempDir()

	// Neither a tarball nor a sums line: the release does not exist here.
	_, err := c.Download(context.Background(), "6.12.9", parent, nil)
	assertMentions(t, err, "linux 6.12.9 not found")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
	if strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("error blames the checksum list for a missing release: %v", err)
	}
	assertNothingLeft(t, parent)
}
