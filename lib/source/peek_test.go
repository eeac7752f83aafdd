package source

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const peekMakefile = "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 3\nEXTRAVERSION = -rc1\n"

func TestPeekTarballVersionCompressions(t *testing.T) {
	for _, decoders := range []string{"system", "go"} {
		for _, compression := range []string{CompressionXZ, CompressionGzip, CompressionBzip2, CompressionZstd} {
			t.Run(decoders+"/"+compression, func(t *testing.T) {
				if decoders == "go" {
					useGoDecoders(t)
				}
				dir := t.TempDir()
				tarball := writeTarball(t, dir, compression, kernelTarball(t))

				version, err := PeekTarballVersion(context.Background(), tarball)
				if err != nil {
					t.Fatalf("PeekTarballVersion: %v", err)
				}
				if version != "6.12.3" {
					t.Errorf("version = %q, want 6.12.3", version)
				}
				entries, err := os.ReadDir(dir)
				if err != nil {
					t.Fatal(err)
				}
				if len(entries) != 1 {
					t.Errorf("%s holds %d entries after the peek, want only the tarball", dir, len(entries))
				}
			})
		}
	}
}

// TestPeekTarballVersionLayouts checks that the peek finds the Makefile that
// extraction would read, and gives up where extraction alone can tell.
func TestPeekTarballVersionLayouts(t *testing.T) {
	dir := func(name string) tarEntry { return tarEntry{name: name, typeflag: tar.TypeDir} }
	file := func(name, body string) tarEntry { return tarEntry{name: name, typeflag: tar.TypeReg, body: body} }
	cases := []struct {
		name    string
		entries []tarEntry
		want    string // "" means ErrVersionNotSeen
	}{
		{"top dir, Makefile late", []tarEntry{
			dir("linux/"), file("linux/tools/Makefile", "VERSION = 9\nPATCHLEVEL = 9\n"),
			file("linux/Kconfig", ""), file("linux/Makefile", peekMakefile),
		}, "6.12.3-rc1"},
		{"dot-slash names", []tarEntry{
			dir("./"), dir("./linux/"), file("./linux/Makefile", peekMakefile),
		}, "6.12.3-rc1"},
		{"no top dir", []tarEntry{
			file("Kconfig", ""), dir("kernel/"), file("Makefile", peekMakefile),
		}, "6.12.3-rc1"},
		{"two top dirs before the Makefile", []tarEntry{
			dir("a/"), dir("b/"), file("a/Makefile", peekMakefile),
		}, ""},
		{"Makefile only in a subdirectory", []tarEntry{
			dir("linux/"), file("linux/tools/Makefile", peekMakefile),
		}, ""},
		{"Makefile is a symlink", []tarEntry{
			dir("linux/"), {name: "linux/Makefile", typeflag: tar.TypeSymlink, link: "Kbuild"},
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tarball := writeTarball(t, t.TempDir(), CompressionGzip, buildTar(t, tc.entries))
			version, err := PeekTarballVersion(context.Background(), tarball)
			if tc.want == "" {
				if !errors.Is(err, ErrVersionNotSeen) {
					t.Fatalf("PeekTarballVersion = %q, %v; want ErrVersionNotSeen", version, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("PeekTarballVersion: %v", err)
			}
			if version != tc.want {
				t.Errorf("version = %q, want %q", version, tc.want)
			}
		})
	}
}

// TestPeekTarballVersionStopsEarly peeks at a tarball cut off after its
// Makefile: the peek succeeds where extraction fails, so it read no further.
func TestPeekTarballVersionStopsEarly(t *testing.T) {
	for _, decoders := range []string{"system", "go"} {
		t.Run(decoders, func(t *testing.T) {
			if decoders == "go" {
				useGoDecoders(t)
			}
			entries := []tarEntry{
				{name: "linux/", typeflag: tar.TypeDir},
				{name: "linux/Makefile", typeflag: tar.TypeReg, body: peekMakefile},
			}
			// Enough incompressible data after the Makefile that the cut
			// lands far past anything a decoder buffers.
			noise := make([]byte, 1<<20)
			seed := uint32(7)
			for i := range noise {
				seed = seed*1664525 + 1013904223
				noise[i] = byte(seed >> 24)
			}
			entries = append(entries, tarEntry{name: "linux/noise.bin", typeflag: tar.TypeReg, body: string(noise)})
			data := compress(t, buildTar(t, entries), CompressionXZ)
			tarball := filepath.Join(t.TempDir(), "linux.tar.xz")
			if err := os.WriteFile(tarball, data[:len(data)/2], 0o644); err != nil {
				t.Fatal(err)
			}

			version, err := PeekTarballVersion(context.Background(), tarball)
			if err != nil || version != "6.12.3-rc1" {
				t.Fatalf("PeekTarballVersion = %q, %v; want 6.12.3-rc1", version, err)
			}
			if _, err := ExtractFile(context.Background(), tarball, t.TempDir(), nil); err == nil {
				t.Fatal("ExtractFile of the cut-off tarball succeeded, so the test proves nothing")
			}
		})
	}
}

func TestPeekTarballVersionLimit(t *testing.T) {
	saved := peekLimit
	peekLimit = 64 << 10
	t.Cleanup(func() { peekLimit = saved })

	entries := append([]tarEntry{{name: "linux/", typeflag: tar.TypeDir}}, tarEntries(t, largeTarball(t))...)
	entries = append(entries, tarEntry{name: "linux/Makefile", typeflag: tar.TypeReg, body: peekMakefile})
	tarball := writeTarball(t, t.TempDir(), CompressionGzip, buildTar(t, entries))

	if version, err := PeekTarballVersion(context.Background(), tarball); !errors.Is(err, ErrVersionNotSeen) {
		t.Fatalf("PeekTarballVersion past the limit = %q, %v; want ErrVersionNotSeen", version, err)
	}
}

func TestPeekTarballVersionBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "linux.tar.xz")
	if err := os.WriteFile(garbage, []byte("not an xz stream"), 0o644); err != nil {
		t.Fatal(err)
	}
	if version, err := PeekTarballVersion(context.Background(), garbage); err == nil {
		t.Errorf("PeekTarballVersion of garbage = %q, nil; want an error", version)
	}

	missing := filepath.Join(dir, "missing.tar.gz")
	if _, err := PeekTarballVersion(context.Background(), missing); err == nil || !strings.Contains(err.Error(), "cannot open") {
		t.Errorf("PeekTarballVersion of a missing file: err = %v, want one saying it cannot open it", err)
	}

	if _, err := PeekTarballVersion(context.Background(), filepath.Join(dir, "linux.zip")); err == nil || !strings.Contains(err.Error(), "not a kernel tarball") {
		t.Errorf("PeekTarballVersion of a .zip: err = %v, want one saying it is not a kernel tarball", err)
	}
}

// tarEntries returns the regular files of a test tarball, for reuse in a
// bigger one.
func tarEntries(t *testing.T, data []byte) []tarEntry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out []tarEntry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{name: hdr.Name, typeflag: tar.TypeReg, body: string(body)})
	}
}

func TestExtractFileRecordsSHA256(t *testing.T) {
	tarball := writeTarball(t, t.TempDir(), CompressionXZ, kernelTarball(t))
	acq, err := ExtractFile(context.Background(), tarball, t.TempDir(), nil)
	if err != nil {
		t.Fatalf("ExtractFile: %v", err)
	}
	defer acq.Cleanup()
	data, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if acq.Tarball == nil || acq.Tarball.SHA256 != hex.EncodeToString(want[:]) {
		t.Errorf("Tarball = %+v, want SHA-256 %x", acq.Tarball, want)
	}
}
