package kernelorg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ktstr/ktbuild/lib/kernelorg/kernelorgtest"
)

// standardRows is a releases.json like kernel.org's in late 2024: a
// linux-next row to skip, a mainline rc, a young stable series, longterm
// series, and an EOL-flagged row.
var standardRows = []kernelorgtest.Row{
	{Moniker: "mainline", Version: "6.13-rc2"},
	{Moniker: "stable", Version: "6.12.3"},
	{Moniker: "stable", Version: "6.11.11", EOL: true},
	{Moniker: "longterm", Version: "6.6.64"},
	{Moniker: "longterm", Version: "6.1.119"},
	{Moniker: "longterm", Version: "5.15.173"},
	{Moniker: "linux-next", Version: "next-20241204"},
}

func newServer(t *testing.T, rows ...kernelorgtest.Row) (*kernelorgtest.Server, *Client) {
	t.Helper()
	srv := kernelorgtest.New(t)
	srv.SetReleases(rows...)
	return srv, &Client{Base: srv.URL}
}

// addPatches serves placeholder tarballs for patches first..last of a
// series, enough for HEAD probes.
func addPatches(srv *kernelorgtest.Server, series string, first, last int) {
	for p := first; p <= last; p++ {
		version := fmt.Sprintf("%s.%d", series, p)
		if p == 0 {
			version = series
		}
		srv.SetFile(kernelorgtest.TarballPath(version), []byte("xz"), "application/x-xz")
	}
}

func countPrefix(reqs []string, prefix string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func TestReleasesSkipsBadRows(t *testing.T) {
	_, c := newServer(t, append(standardRows, kernelorgtest.Row{Moniker: "", Version: "6.5.1"}, kernelorgtest.Row{Moniker: "stable", Version: "six"})...)
	releases, err := c.Releases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range releases {
		got = append(got, r.Moniker+" "+r.Version.String())
	}
	want := []string{"mainline 6.13-rc2", "stable 6.12.3", "stable 6.11.11", "longterm 6.6.64", "longterm 6.1.119", "longterm 5.15.173"}
	if !slices.Equal(got, want) {
		t.Errorf("releases = %q, want %q", got, want)
	}
	if !releases[2].EOL {
		t.Error("iseol flag of 6.11.11 lost")
	}
}

func TestReleasesCached(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	for range 3 {
		if _, err := c.Releases(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.RequestCount(); n != 1 {
		t.Errorf("%d requests for releases.json, want 1", n)
	}
}

func TestReleasesBadDocument(t *testing.T) {
	cases := map[string]struct {
		body, contentType, want string
	}{
		"html type":   {`{"releases":[]}`, "text/html; charset=utf-8", "HTML page"},
		"html body":   {"<!DOCTYPE html><p>login</p>", "application/json", "HTML page"},
		"not json":    {"releases", "application/json", "not valid releases.json"},
		"no releases": {`{"releases":[{"moniker":"linux-next","version":"next-1"}]}`, "application/json", "no usable rows"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv, c := newServer(t)
			srv.Handle("/releases.json", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.Write([]byte(tc.body))
			})
			_, err := c.Releases(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), srv.URL+"/releases.json") {
				t.Errorf("err = %v, want the URL", err)
			}
		})
	}
}

func TestReleasesUnreachable(t *testing.T) {
	srv := kernelorgtest.New(t)
	base := srv.URL
	srv.Close()
	c := &Client{Base: base}
	_, err := c.Releases(context.Background())
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), base) || !strings.Contains(err.Error(), BaseURLEnv) {
		t.Errorf("err = %v, want the URL and %s", err, BaseURLEnv)
	}
}

func TestReleasesHTTPError(t *testing.T) {
	srv, c := newServer(t)
	srv.Handle("/releases.json", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	})
	_, err := c.Releases(context.Background())
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v, want HTTP 503", err)
	}
	if errors.Is(err, ErrUnreachable) {
		t.Error("an HTTP answer is not ErrUnreachable")
	}
}

func TestLatestStable(t *testing.T) {
	cases := []struct {
		name string
		rows []kernelorgtest.Row
		want string
	}{
		{"young stable skipped", standardRows, "6.11.11"},
		{"stable first", []kernelorgtest.Row{{Moniker: "mainline", Version: "6.13"}, {Moniker: "stable", Version: "6.12.8"}, {Moniker: "longterm", Version: "6.6.64"}}, "6.12.8"},
		{"mainline ignored", []kernelorgtest.Row{{Moniker: "mainline", Version: "6.13.9"}, {Moniker: "longterm", Version: "6.6.9"}}, "6.6.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newServer(t, tc.rows...)
			got, err := c.LatestStable(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("LatestStable = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLatestStableNone(t *testing.T) {
	_, c := newServer(t, kernelorgtest.Row{Moniker: "stable", Version: "6.12.2"})
	_, err := c.LatestStable(context.Background())
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "-version=") {
		t.Fatalf("err = %v", err)
	}
}

func TestResolveWithoutNetwork(t *testing.T) {
	cases := map[string]string{
		"6.12.1":   "6.12.1",
		"6.12.0":   "6.12",
		"6.13-rc2": "6.13-rc2",
		"4.4.302":  "4.4.302",
	}
	for in, want := range cases {
		srv, c := newServer(t, standardRows...)
		got, err := c.Resolve(context.Background(), in)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", in, err)
		}
		if got != want {
			t.Errorf("Resolve(%s) = %s, want %s", in, got, want)
		}
		if n := srv.RequestCount(); n != 0 {
			t.Errorf("Resolve(%s) sent %d requests, want 0", in, n)
		}
	}
}

func TestResolveSeriesFromReleases(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	for in, want := range map[string]string{"6.12": "6.12.3", "6.11": "6.11.11", "5.15": "5.15.173"} {
		got, err := c.Resolve(context.Background(), in)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", in, err)
		}
		if got != want {
			t.Errorf("Resolve(%s) = %s, want %s", in, got, want)
		}
	}
	if n := countPrefix(srv.Requests(), "HEAD"); n != 0 {
		t.Errorf("%d HEAD probes for listed series, want 0", n)
	}
}

func TestResolveInvalid(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	_, err := c.Resolve(context.Background(), "6.x")
	if err == nil || !strings.Contains(err.Error(), `"6.x"`) || !strings.Contains(err.Error(), "MAJOR.MINOR") {
		t.Fatalf("err = %v", err)
	}
	if srv.RequestCount() != 0 {
		t.Error("an invalid version sent requests")
	}
}

func TestResolveEOLProbe(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	addPatches(srv, "6.7", 0, 20)

	got, err := c.Resolve(context.Background(), "6.7")
	if err != nil {
		t.Fatal(err)
	}
	if got != "6.7.20" {
		t.Errorf("Resolve(6.7) = %s, want 6.7.20", got)
	}
	heads := countPrefix(srv.Requests(), "HEAD /pub/linux/kernel/v6.x/linux-6.7.")
	if heads != 2*probeBatch {
		t.Errorf("%d HEAD probes, want two batches of %d", heads, probeBatch)
	}
}

func TestResolveEOLProbeBatchEdge(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	addPatches(srv, "6.8", 0, probeBatch)

	got, err := c.Resolve(context.Background(), "6.8")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("6.8.%d", probeBatch); got != want {
		t.Errorf("Resolve(6.8) = %s, want %s", got, want)
	}
}

func TestResolveEOLFirstReleaseOnly(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	addPatches(srv, "6.9", 0, 0)

	got, err := c.Resolve(context.Background(), "6.9")
	if err != nil {
		t.Fatal(err)
	}
	if got != "6.9" {
		t.Errorf("Resolve(6.9) = %s, want 6.9", got)
	}
}

func TestResolveUnknownSeries(t *testing.T) {
	_, c := newServer(t, standardRows...)
	_, err := c.Resolve(context.Background(), "4.99")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	for _, want := range []string{"4.99", "6.12, 6.11", "linux-4.99.tar.xz"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %q", err, want)
		}
	}
}

func TestResolveOnlyRC(t *testing.T) {
	_, c := newServer(t, standardRows...)
	_, err := c.Resolve(context.Background(), "6.13")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "-version=6.13-rc2") {
		t.Fatalf("err = %v, want a hint to use 6.13-rc2", err)
	}
}

func TestResolveProbeRejectsHTMLAnswers(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	addPatches(srv, "6.7", 0, 3)
	srv.SetFile(kernelorgtest.TarballPath("6.7.4"), []byte("<html>"), "text/html")

	got, err := c.Resolve(context.Background(), "6.7")
	if err != nil {
		t.Fatal(err)
	}
	if got != "6.7.3" {
		t.Errorf("Resolve(6.7) = %s, want 6.7.3", got)
	}
}

func TestResolveProbeRunaway(t *testing.T) {
	c := &Client{Base: "http://127.0.0.1:9", HTTP: &http.Client{Transport: everythingExists{}}}
	_, err := c.Resolve(context.Background(), "6.7")
	if err == nil || !strings.Contains(err.Error(), "returns 200 for every path") {
		t.Fatalf("err = %v", err)
	}
}

// everythingExists is a transport that returns 200 for every path without
// touching the network, and a one-row releases.json.
type everythingExists struct{}

func (everythingExists) RoundTrip(r *http.Request) (*http.Response, error) {
	body := `{"releases":[{"moniker":"stable","version":"6.12.3"}]}`
	if !strings.HasSuffix(r.URL.Path, "releases.json") {
		body = ""
	}
	return &http.Response{
		StatusCode: 200, Status: "200 OK", Request: r,
		Header: http.Header{"Content-Type": {"application/octet-stream"}},
		Body:   io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
	}, nil
}

func TestResolveProbeHTTPError(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	addPatches(srv, "6.7", 0, 3)
	srv.Handle(kernelorgtest.TarballPath("6.7.2"), func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	})
	_, err := c.Resolve(context.Background(), "6.7")
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "linux-6.7.2.tar.xz") {
		t.Fatalf("err = %v, want the 403 and the URL", err)
	}
}

func TestExpandRange(t *testing.T) {
	srv, c := newServer(t, standardRows...)
	addPatches(srv, "6.7", 0, 12)
	addPatches(srv, "6.8", 0, 12)
	addPatches(srv, "6.9", 0, 12)
	addPatches(srv, "6.10", 0, 14)

	cases := []struct {
		from, to string
		want     []string
	}{
		{"6.6", "6.12", []string{"6.6.64", "6.7.12", "6.8.12", "6.9.12", "6.10.14", "6.11.11", "6.12.3"}},
		{"6.10", "6.12", []string{"6.10.14", "6.11.11", "6.12.3"}},
		{"6.6.10", "6.12.1", []string{"6.6.64", "6.7.12", "6.8.12", "6.9.12", "6.10.14", "6.11.11", "6.12.1"}},
		{"6.12", "6.12", []string{"6.12.3"}},
		{"6.12.1", "6.12.2", []string{"6.12.2"}},
	}
	for _, tc := range cases {
		got, err := c.ExpandRange(context.Background(), tc.from, tc.to)
		if err != nil {
			t.Errorf("ExpandRange(%s, %s): %v", tc.from, tc.to, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ExpandRange(%s, %s) = %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestExpandRangeAcrossMajors(t *testing.T) {
	srv, c := newServer(t, kernelorgtest.Row{Moniker: "longterm", Version: "6.1.119"})
	addPatches(srv, "5.18", 0, 19)
	addPatches(srv, "5.19", 0, 17)
	addPatches(srv, "6.0", 0, 19)

	got, err := c.ExpandRange(context.Background(), "5.18", "6.1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"5.18.19", "5.19.17", "6.0.19", "6.1.119"}; !slices.Equal(got, want) {
		t.Errorf("ExpandRange(5.18, 6.1) = %q, want %q", got, want)
	}
}

func TestExpandRangeErrors(t *testing.T) {
	cases := []struct{ from, to, want string }{
		{"6.12", "6.6", "backwards"},
		{"6.12.3", "6.12.1", "backwards"},
		{"6.12", "6.13-rc2", "release-candidate bound"},
		{"6.12", "6.14", "series 6.13"},
		{"6.x", "6.12", `"6.x"`},
	}
	for _, tc := range cases {
		_, c := newServer(t, standardRows...)
		_, err := c.ExpandRange(context.Background(), tc.from, tc.to)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ExpandRange(%s, %s) err = %v, want it to mention %q", tc.from, tc.to, err, tc.want)
		}
	}
}

func TestClientIsEOL(t *testing.T) {
	_, c := newServer(t, standardRows...)
	eol, err := c.IsEOL(context.Background(), "6.10.3")
	if err != nil || !eol {
		t.Errorf("IsEOL(6.10.3) = %v, %v; want true", eol, err)
	}
	eol, err = c.IsEOL(context.Background(), "6.12.3")
	if err != nil || eol {
		t.Errorf("IsEOL(6.12.3) = %v, %v; want false", eol, err)
	}
}

func TestNewClientBase(t *testing.T) {
	t.Setenv(BaseURLEnv, "http://127.0.0.1:9/mirror/")
	c := NewClient()
	if c.Base != "http://127.0.0.1:9/mirror" {
		t.Fatalf("Base = %q", c.Base)
	}
	if got := c.ReleasesURL(); got != "http://127.0.0.1:9/mirror/releases.json" {
		t.Errorf("ReleasesURL = %s", got)
	}
	if got := c.TarballURL(Version{6, 12, 3, 0}); got != "http://127.0.0.1:9/mirror/pub/linux/kernel/v6.x/linux-6.12.3.tar.xz" {
		t.Errorf("TarballURL = %s", got)
	}
	if got := c.TarballURL(Version{6, 13, 0, 2}); got != "http://127.0.0.1:9/mirror/torvalds/t/linux-6.13-rc2.tar.gz" {
		t.Errorf("rc TarballURL = %s", got)
	}
	if got := c.SumsURL(6); got != "http://127.0.0.1:9/mirror/pub/linux/kernel/v6.x/sha256sums.asc" {
		t.Errorf("SumsURL = %s", got)
	}
}

// TestDefaultURLs only formats addresses; nothing is sent.
func TestDefaultURLs(t *testing.T) {
	t.Setenv(BaseURLEnv, "")
	c := NewClient()
	cases := map[string]string{
		c.ReleasesURL():                    "https://www.kernel.org/releases.json",
		c.TarballURL(Version{6, 12, 3, 0}): "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.12.3.tar.xz",
		c.TarballURL(Version{6, 12, 0, 0}): "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.12.tar.xz",
		c.TarballURL(Version{6, 13, 0, 2}): "https://git.kernel.org/torvalds/t/linux-6.13-rc2.tar.gz",
		c.SumsURL(5):                       "https://cdn.kernel.org/pub/linux/kernel/v5.x/sha256sums.asc",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("URL = %s, want %s", got, want)
		}
	}
}
