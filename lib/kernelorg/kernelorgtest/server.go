// Package kernelorgtest runs a stand-in for kernel.org on a loopback
// httptest server: releases.json, release tarballs of a tiny kernel-looking
// tree, and sha256sums.asc files. Point a kernelorg.Client's Base, or
// KTSTR_KERNEL_ORG_URL, at Server.URL.
package kernelorgtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ulikunitz/xz"
)

// Row is one releases.json row.
type Row struct {
	Moniker string
	Version string
	EOL     bool
}

type file struct {
	body        []byte
	contentType string
}

// Server is a fake kernel.org. Every request is recorded, found or not, so
// tests can assert how many were sent.
type Server struct {
	// URL is the server's base URL, "http://127.0.0.1:PORT".
	URL string

	srv      *httptest.Server
	mu       sync.Mutex
	rows     []Row
	files    map[string]file             // by URL path
	handlers map[string]http.HandlerFunc // by URL path, ahead of files
	sums     map[int]map[string]string   // major -> tarball name -> hex
	requests []string
}

// New starts a server on loopback with an empty releases.json; it stops
// when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		files:    map[string]file{},
		handlers: map[string]http.HandlerFunc{},
		sums:     map[int]map[string]string{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	handler := s.handlers[r.URL.Path]
	f, ok := s.files[r.URL.Path]
	s.mu.Unlock()

	if handler != nil {
		handler(w, r)
		return
	}
	switch {
	case r.URL.Path == "/releases.json":
		f, ok = file{body: s.releasesJSON(), contentType: "application/json"}, true
	case strings.HasSuffix(r.URL.Path, "/sha256sums.asc"):
		f, ok = s.sumsFile(r.URL.Path)
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(f.body)))
	if r.Method != http.MethodHead {
		w.Write(f.body)
	}
}

// Close stops the server early, for tests of an unreachable kernel.org.
func (s *Server) Close() { s.srv.Close() }

// Requests returns every request so far as "METHOD /path", oldest first.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// RequestCount returns how many requests the server has received.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// SetReleases replaces the rows of releases.json.
func (s *Server) SetReleases(rows ...Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append([]Row(nil), rows...)
}

func (s *Server) releasesJSON() []byte {
	type row struct {
		Moniker string `json:"moniker"`
		Version string `json:"version"`
		IsEOL   bool   `json:"iseol"`
	}
	s.mu.Lock()
	doc := struct {
		Releases []row `json:"releases"`
	}{Releases: []row{}}
	for _, r := range s.rows {
		doc.Releases = append(doc.Releases, row{r.Moniker, r.Version, r.EOL})
	}
	s.mu.Unlock()
	data, _ := json.Marshal(doc)
	return data
}

// Handle serves path with h instead of the stored files, for failure
// cases such as a server that hangs up mid-stream.
func (s *Server) Handle(path string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[path] = h
}

// SetFile serves body at path with the given Content-Type.
func (s *Server) SetFile(path string, body []byte, contentType string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = file{body: body, contentType: contentType}
}

// TarballPath returns the URL path of a version's tarball, the same layout
// kernel.org uses: /pub/linux/kernel/vN.x/linux-V.tar.xz for releases and
// /torvalds/t/linux-V.tar.gz for release candidates.
func TarballPath(version string) string {
	if strings.Contains(version, "-rc") {
		return "/torvalds/t/linux-" + version + ".tar.gz"
	}
	major, _, _ := strings.Cut(version, ".")
	return fmt.Sprintf("/pub/linux/kernel/v%s.x/linux-%s.tar.xz", major, version)
}

// SumsPath returns the URL path of a major version's sha256sums.asc.
func SumsPath(major int) string {
	return fmt.Sprintf("/pub/linux/kernel/v%d.x/sha256sums.asc", major)
}

// AddRelease serves a tarball of a tiny tree for version, with a Makefile
// whose VERSION, PATCHLEVEL, SUBLEVEL and EXTRAVERSION match it and a
// Kconfig, and lists its SHA-256 unless it is a release candidate. It
// returns the tarball bytes.
func (s *Server) AddRelease(t testing.TB, version string) []byte {
	t.Helper()
	return s.AddTarball(t, version, TreeFiles(version))
}

// TreeFiles returns the files of the tiny tree AddRelease packs.
func TreeFiles(version string) map[string]string {
	base, extra, _ := strings.Cut(version, "-")
	if extra != "" {
		extra = "-" + extra
	}
	parts := strings.Split(base, ".")
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	makefile := fmt.Sprintf("VERSION = %s\nPATCHLEVEL = %s\nSUBLEVEL = %s\nEXTRAVERSION = %s\nNAME = Test\n\nall:\n\t@true\n",
		parts[0], parts[1], parts[2], extra)
	return map[string]string{
		"Makefile":           makefile,
		"Kconfig":            "mainmenu \"Linux/$(ARCH) $(KERNELVERSION) Kernel Configuration\"\n",
		"kernel/sched/ext.c": "/* sched_ext */\n",
	}
}

// AddTarball packs files (path -> content) under linux-{version}/ as
// kernel.org would name the tarball, serves it, and lists its SHA-256
// unless version is a release candidate. It returns the tarball bytes.
func (s *Server) AddTarball(t testing.TB, version string, files map[string]string) []byte {
	t.Helper()
	data := Pack(t, "linux-"+version, files, strings.Contains(version, "-rc"))
	s.serveTarball(version, data)
	return data
}

// AddTarballFromDir packs the regular files under dir as linux-{version}/,
// serves the tarball and lists its SHA-256 like AddTarball.
func (s *Server) AddTarballFromDir(t testing.TB, version, dir string) []byte {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		files[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatalf("kernelorgtest: read %s: %v", dir, err)
	}
	return s.AddTarball(t, version, files)
}

func (s *Server) serveTarball(version string, data []byte) {
	path := TarballPath(version)
	contentType := "application/x-xz"
	if strings.HasSuffix(path, ".gz") {
		contentType = "application/x-gzip"
	}
	s.SetFile(path, data, contentType)
	if strings.Contains(version, "-rc") {
		return
	}
	sum := sha256.Sum256(data)
	major := 0
	fmt.Sscanf(version, "%d.", &major)
	s.SetSum(major, filepath.Base(path), hex.EncodeToString(sum[:]))
}

// SetSum sets the SHA-256 line for a tarball name in the major's
// sha256sums.asc.
func (s *Server) SetSum(major int, name, hexSum string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sums[major] == nil {
		s.sums[major] = map[string]string{}
	}
	s.sums[major][name] = hexSum
}

// DeleteSum removes a tarball's line from the major's sha256sums.asc.
func (s *Server) DeleteSum(major int, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sums[major], name)
}

// sumsFile renders a sha256sums.asc in kernel.org's shape: checksum lines
// inside a PGP clear-signed message (with a dummy signature).
func (s *Server) sumsFile(path string) (file, bool) {
	var major int
	if _, err := fmt.Sscanf(path, "/pub/linux/kernel/v%d.x/sha256sums.asc", &major); err != nil {
		return file{}, false
	}
	s.mu.Lock()
	sums, ok := s.sums[major]
	names := make([]string, 0, len(sums))
	for name := range sums {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n")
	b.WriteString("0000000000000000000000000000000000000000000000000000000000000000  ChangeLog-0.0.1\n")
	for _, name := range names {
		fmt.Fprintf(&b, "%s  %s\n", sums[name], name)
	}
	b.WriteString("-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEEtest\n=abcd\n-----END PGP SIGNATURE-----\n")
	s.mu.Unlock()
	if !ok {
		return file{}, false
	}
	return file{body: []byte(b.String()), contentType: "text/plain; charset=utf-8"}, true
}

// Pack builds a tarball with files under top/, compressed with gzip when
// gz is true and xz otherwise.
func Pack(t testing.TB, top string, files map[string]string, gz bool) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)

	dirs := map[string]bool{}
	addDir := func(dir string) {
		if dirs[dir] {
			return
		}
		dirs[dir] = true
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
	}
	addDir(top)
	for _, name := range names {
		parts := strings.Split(name, "/")
		for i := 1; i < len(parts); i++ {
			addDir(top + "/" + strings.Join(parts[:i], "/"))
		}
		body := files[name]
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: top + "/" + name, Mode: 0o644, Size: int64(len(body))}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if gz {
		zw := gzip.NewWriter(&out)
		zw.Write(raw.Bytes())
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	zw, err := xz.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
