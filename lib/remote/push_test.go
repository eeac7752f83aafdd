package remote

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ktstr/ktbuild/lib/remote/registrytest"
)

// damageToEightBytes overwrites a stored blob with 8 bytes, so the registry
// reports a size of 8 for it.
func damageToEightBytes(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("damaged!"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPushDamagedBlob(t *testing.T) {
	repairs := []struct {
		name   string
		repair func(t *testing.T, reg *registrytest.Registry, r *Remote, blobDir string)
	}{
		{"storage directory removed", func(t *testing.T, _ *registrytest.Registry, _ *Remote, blobDir string) {
			if err := os.RemoveAll(blobDir); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage collected", func(t *testing.T, reg *registrytest.Registry, r *Remote, _ string) {
			ctx := testContext(t)
			desc, err := r.repo.Resolve(ctx, TagFor(testKey))
			if err != nil {
				t.Fatal(err)
			}
			if err := r.repo.Delete(ctx, desc); err != nil {
				t.Fatal(err)
			}
			reg.GarbageCollect(t)
		}},
	}
	for _, tc := range repairs {
		t.Run(tc.name, func(t *testing.T) {
			reg := registrytest.Start(t, registrytest.Options{})
			r := newRemote(t, reg, "")
			ctx := testContext(t)
			e, m := pushEntry(t, reg)
			image := imageLayer(m)
			damageToEightBytes(t, reg.BlobPath(image.Digest.String()))

			_, err := r.Publish(ctx, e)
			t.Logf("push error: %v", err)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Publish over a damaged blob: error = %v, want ErrCorrupt", err)
			}
			var rerr *Error
			if !errors.As(err, &rerr) || rerr.Op != "push" {
				t.Errorf("error is not a push *Error: %#v", err)
			}
			blobDir := filepath.Dir(reg.BlobPath(image.Digest.String()))
			rel, relErr := filepath.Rel(reg.Storage, blobDir)
			if relErr != nil {
				t.Fatal(relErr)
			}
			for _, want := range []string{
				image.Digest.String(), "bzImage", "it is 8 bytes", "expected " + strconv.FormatInt(image.Size, 10),
				"did not replace it", "delete blob", rel, "garbage-collect command",
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q", want)
				}
			}

			// The steps the error names must repair the registry.
			tc.repair(t, reg, r, blobDir)
			pub, err := r.Publish(ctx, e)
			if err != nil {
				t.Fatalf("push after the repair: %v", err)
			}
			if pub.Uploaded < image.Size {
				t.Errorf("push after the repair sent %d bytes, want at least the image's %d", pub.Uploaded, image.Size)
			}
			pulled, found, err := r.Pull(ctx, testKey, openCache(t))
			if err != nil || !found {
				t.Fatalf("pull after the repair: found=%v err=%v", found, err)
			}
			if !bytes.Equal(mustRead(t, pulled.ImagePath), mustRead(t, e.ImagePath)) {
				t.Error("pulled image differs from the pushed one")
			}
		})
	}
}

// A registry that replaces a damaged blob on upload: the proxy reports a
// wrong size for the first lookup only, as if the upload had fixed it.
func TestPushReplacesDamagedBlob(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	e, m := pushEntry(t, reg)
	image := imageLayer(m)
	p := &faultProxy{staleSizes: map[string]int64{image.Digest.String(): 8}}
	r := newRemoteAt(t, startProxy(t, reg, p), Options{})

	pub, err := r.Publish(testContext(t), e)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if pub.Uploaded != image.Size || pub.Reused != 2 {
		t.Errorf("Published = %+v, want Uploaded %d (the image) and Reused 2", pub, image.Size)
	}
}

func TestPushConnectionCut(t *testing.T) {
	cases := []struct {
		name    string
		cut     func(r *http.Request) bool
		subject string
	}{
		{"metadata", func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/blobs/uploads/") }, "upload metadata.json"},
		{"image", func(r *http.Request) bool {
			return strings.Contains(r.URL.Path, "/blobs/uploads/") && r.ContentLength > 1<<20
		}, "upload bzImage"},
		{"manifest", func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") }, "upload the manifest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := registrytest.Start(t, registrytest.Options{})
			host := startProxy(t, reg, &faultProxy{cutUpload: tc.cut})
			r := newRemoteAt(t, host, Options{StallTimeout: 5 * time.Second})
			e := storeEntry(t, openCache(t), testKey, entryFiles{image: 4 << 20, vmlinux: 8 << 20})

			start := time.Now()
			_, err := r.Publish(testContext(t), e)
			if took := time.Since(start); took > hangLimit {
				t.Errorf("Publish took %s", took)
			}
			t.Logf("push error: %v", err)
			if !errors.Is(err, ErrInterrupted) {
				t.Fatalf("Publish with the connection cut: error = %v, want ErrInterrupted", err)
			}
			if errors.Is(err, ErrUnreachable) {
				t.Errorf("a cut upload is reported as an unreachable registry: %v", err)
			}
			if !strings.Contains(err.Error(), tc.subject+": the connection broke") {
				t.Errorf("error does not say the connection broke in %s: %v", tc.subject, err)
			}
			if !strings.Contains(err.Error(), "retry") {
				t.Errorf("error does not advise a retry: %v", err)
			}
		})
	}
}
