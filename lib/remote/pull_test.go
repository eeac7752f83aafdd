package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/ktstr/ktbuild/lib/cache"
	"github.com/ktstr/ktbuild/lib/remote/registrytest"
)

const testKey = "6.12.9-tarball-x86_64-kc1a2b3c4d"

func TestPushPullRoundTrip(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	r := newRemote(t, reg, "")

	cases := []struct {
		name  string
		key   string
		files entryFiles
	}{
		{"stripped vmlinux", testKey, smallEntry},
		{"unstripped vmlinux", "6.12.9-tarball-x86_64-kc00000001", entryFiles{image: 5000, vmlinux: 70000}},
		{"no vmlinux", "6.12.9-tarball-x86_64-kc00000002", entryFiles{image: 4096}},
		{"key that is no tag", "feature+x~1-git-abc1234-x86_64-kc1a2b3c4d", smallEntry},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			src, dst := openCache(t), openCache(t)
			pushed := storeEntry(t, src, tc.key, tc.files)
			if err := r.Push(ctx, pushed); err != nil {
				t.Fatal(err)
			}

			pulled, found, err := r.Pull(ctx, tc.key, dst)
			if err != nil {
				t.Fatal(err)
			}
			if !found {
				t.Fatal("Pull found = false after Push")
			}
			if pulled.Dir != dst.EntryDir(tc.key) {
				t.Errorf("pulled entry dir = %s, want %s", pulled.Dir, dst.EntryDir(tc.key))
			}
			if !reflect.DeepEqual(pulled.Meta, pushed.Meta) {
				t.Errorf("pulled metadata differs:\n got %+v\nwant %+v", pulled.Meta, pushed.Meta)
			}
			if !bytes.Equal(mustRead(t, pulled.ImagePath), mustRead(t, pushed.ImagePath)) {
				t.Error("pulled image differs from the pushed one")
			}
			if (pulled.VmlinuxPath == "") != (pushed.VmlinuxPath == "") {
				t.Fatalf("pulled vmlinux path %q, pushed %q", pulled.VmlinuxPath, pushed.VmlinuxPath)
			}
			if pushed.VmlinuxPath != "" && !bytes.Equal(mustRead(t, pulled.VmlinuxPath), mustRead(t, pushed.VmlinuxPath)) {
				t.Error("pulled vmlinux differs from the pushed one")
			}

			looked, hit, err := dst.Lookup(tc.key)
			if err != nil || !hit {
				t.Fatalf("Lookup after Pull: hit=%v err=%v", hit, err)
			}
			if !reflect.DeepEqual(looked.Meta, pushed.Meta) {
				t.Errorf("metadata.json on disk differs:\n got %+v\nwant %+v", looked.Meta, pushed.Meta)
			}
			if left := scratchLeft(t, dst.Root); len(left) > 0 {
				t.Errorf("pull left %v in the cache root", left)
			}
			if left := scratchLeft(t, src.Root); len(left) > 0 {
				t.Errorf("push left %v in the cache root", left)
			}
		})
	}
}

func TestPushArtifactLayout(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	r := newRemote(t, reg, "")
	ctx := testContext(t)
	e := storeEntry(t, openCache(t), testKey, smallEntry)

	pub, err := r.Publish(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Ref != reg.Host+"/kernels:"+testKey {
		t.Errorf("Ref = %s", pub.Ref)
	}
	_, data, err := oras.FetchBytes(ctx, r.repo, testKey, oras.DefaultFetchBytesOptions)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := r.fetchManifest(ctx, testKey)
	if err != nil {
		t.Fatalf("fetch manifest: %v\n%s", err, data)
	}
	if m.ArtifactType != ArtifactType || m.Config.MediaType != MetadataMediaType {
		t.Errorf("artifactType %q config %q", m.ArtifactType, m.Config.MediaType)
	}
	if m.Annotations[ocispec.AnnotationCreated] != "2026-01-02T03:04:05Z" {
		t.Errorf("created annotation = %q, want the build time", m.Annotations[ocispec.AnnotationCreated])
	}
	if m.Annotations[AnnotationVersion] != "6.12.9" || m.Annotations[AnnotationArch] != "x86_64" {
		t.Errorf("manifest annotations = %v", m.Annotations)
	}
	config, err := content.FetchAll(ctx, r.repo.Blobs(), m.Config)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(config, mustRead(t, filepath.Join(e.Dir, cache.MetadataName))) {
		t.Error("config blob is not the entry's metadata.json")
	}
	titles := map[string]string{}
	for _, l := range m.Layers {
		titles[l.MediaType] = l.Annotations[ocispec.AnnotationTitle]
	}
	want := map[string]string{ImageMediaType: "bzImage", VmlinuxMediaType: "vmlinux"}
	if !reflect.DeepEqual(titles, want) {
		t.Errorf("layers = %v, want %v", titles, want)
	}
	var total int64 = m.Config.Size
	for _, l := range m.Layers {
		total += l.Size
	}
	if pub.Size != total || pub.Uploaded != total || pub.Reused != 0 {
		t.Errorf("Published = %+v, want Size and Uploaded %d, Reused 0", pub, total)
	}
}

func TestPushTwiceReusesBlobs(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	r := newRemote(t, reg, "")
	ctx := testContext(t)
	e := storeEntry(t, openCache(t), testKey, smallEntry)

	first, err := r.Publish(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.Publish(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if second.Uploaded != 0 || second.Reused != 3 {
		t.Errorf("second push uploaded %d bytes and reused %d blobs, want 0 and 3", second.Uploaded, second.Reused)
	}
	if second.Manifest != first.Manifest {
		t.Errorf("second push made manifest %s, first %s", second.Manifest, first.Manifest)
	}
}

func TestPullMissingTag(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	r := newRemote(t, reg, "")
	ctx := testContext(t)
	c := openCache(t)

	// The repository does not exist at first, then exists without the tag.
	for i, when := range []string{"empty registry", "other tag pushed"} {
		if i == 1 {
			if err := r.Push(ctx, storeEntry(t, openCache(t), "other-key", smallEntry)); err != nil {
				t.Fatal(err)
			}
		}
		e, found, err := r.Pull(ctx, testKey, c)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if found || e.Dir != "" {
			t.Errorf("%s: found=%v entry=%+v, want a miss", when, found, e)
		}
	}
	if _, hit, _ := c.Lookup(testKey); hit {
		t.Error("a missed pull stored an entry")
	}
}

func TestPullTamperedBlob(t *testing.T) {
	cases := []struct {
		name   string
		blob   func(m ocispec.Manifest) ocispec.Descriptor
		damage func(t *testing.T, path string)
	}{
		{"vmlinux same size", vmlinuxLayer, overwriteRandom},
		{"vmlinux truncated", vmlinuxLayer, truncateHalf},
		{"image eight bytes", imageLayer, damageToEightBytes},
		{"image same size", imageLayer, overwriteRandom},
		{"metadata same size", func(m ocispec.Manifest) ocispec.Descriptor { return m.Config }, overwriteRandom},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := registrytest.Start(t, registrytest.Options{})
			r := newRemote(t, reg, "")
			ctx := testContext(t)
			if err := r.Push(ctx, storeEntry(t, openCache(t), testKey, smallEntry)); err != nil {
				t.Fatal(err)
			}
			m, _, err := r.fetchManifest(ctx, testKey)
			if err != nil {
				t.Fatal(err)
			}
			blob := tc.blob(m)
			tc.damage(t, reg.BlobPath(blob.Digest.String()))

			c := openCache(t)
			_, found, err := r.Pull(ctx, testKey, c)
			t.Logf("pull error: %v", err)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Pull error = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), blob.Digest.String()) {
				t.Errorf("error does not name the blob %s: %v", blob.Digest, err)
			}
			// A push alone does not replace the registry's copy, so the
			// advice must be to delete the blob first.
			for _, want := range []string{"delete blob " + blob.Digest.String(), distributionBlobDir(blob.Digest), "nothing was stored locally"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q", want)
				}
			}
			if found {
				t.Error("found = true for a corrupt artifact")
			}
			if _, err := os.Stat(c.EntryDir(testKey)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("entry directory exists after a corrupt pull (stat error %v)", err)
			}
			if left := scratchLeft(t, c.Root); len(left) > 0 {
				t.Errorf("pull left %v in the cache root", left)
			}
		})
	}
}

func TestPullDamagedManifest(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	r := newRemote(t, reg, "")
	ctx := testContext(t)
	pub, err := r.Publish(ctx, storeEntry(t, openCache(t), testKey, smallEntry))
	if err != nil {
		t.Fatal(err)
	}
	// Still valid JSON of the same size, so only the digest check detects it.
	path := reg.BlobPath(pub.Manifest.String())
	data := mustRead(t, path)
	damaged := bytes.Replace(data, []byte(`"x86_64"`), []byte(`"x86_65"`), 1)
	if bytes.Equal(damaged, data) {
		t.Fatalf("the manifest has no arch annotation to damage:\n%s", data)
	}
	if err := os.WriteFile(path, damaged, 0o644); err != nil {
		t.Fatal(err)
	}

	_, found, err := r.Pull(ctx, testKey, openCache(t))
	t.Logf("pull error: %v", err)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Pull error = %v, want ErrCorrupt", err)
	}
	if found {
		t.Error("found = true for a damaged manifest")
	}
	for _, want := range []string{"the manifest does not match its digest " + pub.Manifest.String(), "delete blob " + pub.Manifest.String()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q", want)
		}
	}
}

func vmlinuxLayer(m ocispec.Manifest) ocispec.Descriptor { return layerOf(m, VmlinuxMediaType) }
func imageLayer(m ocispec.Manifest) ocispec.Descriptor   { return layerOf(m, ImageMediaType) }

func layerOf(m ocispec.Manifest, mediaType string) ocispec.Descriptor {
	for _, l := range m.Layers {
		if l.MediaType == mediaType {
			return l
		}
	}
	return ocispec.Descriptor{}
}

func overwriteRandom(t *testing.T, path string) {
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, info.Size())
	rand.Read(junk)
	if err := os.WriteFile(path, junk, 0o644); err != nil {
		t.Fatal(err)
	}
}

func truncateHalf(t *testing.T, path string) {
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, info.Size()/2); err != nil {
		t.Fatal(err)
	}
}

func TestPullForeignArtifact(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	r := newRemote(t, reg, "")
	ctx := testContext(t)

	desc, err := oras.PackManifest(ctx, r.repo, oras.PackManifestVersion1_1, "application/vnd.example.other.v1", oras.PackManifestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.repo.Tag(ctx, desc, testKey); err != nil {
		t.Fatal(err)
	}
	c := openCache(t)
	_, found, err := r.Pull(ctx, testKey, c)
	t.Logf("pull error: %v", err)
	if !errors.Is(err, ErrInvalidArtifact) {
		t.Fatalf("Pull error = %v, want ErrInvalidArtifact", err)
	}
	if found {
		t.Error("found = true for a foreign artifact")
	}
	if _, hit, _ := c.Lookup(testKey); hit {
		t.Error("a foreign artifact was stored")
	}
}

func TestPullReplacesLocalEntry(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	r := newRemote(t, reg, "")
	ctx := testContext(t)
	pushed := storeEntry(t, openCache(t), testKey, smallEntry)
	if err := r.Push(ctx, pushed); err != nil {
		t.Fatal(err)
	}

	c := openCache(t)
	storeEntry(t, c, testKey, entryFiles{image: 1000})
	pulled, _, err := r.Pull(ctx, testKey, c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustRead(t, pulled.ImagePath), mustRead(t, pushed.ImagePath)) {
		t.Error("the local entry was not replaced by the pulled one")
	}
}

func TestPushMissingEntry(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	r := newRemote(t, reg, "")
	c := openCache(t)
	e := storeEntry(t, c, testKey, smallEntry)
	if err := os.RemoveAll(e.Dir); err != nil {
		t.Fatal(err)
	}

	err := r.Push(testContext(t), e)
	if err == nil || !strings.Contains(err.Error(), "no usable entry") {
		t.Fatalf("Push of a removed entry: %v, want a no usable entry error", err)
	}
	if left := scratchLeft(t, c.Root); len(left) > 0 {
		t.Errorf("push left %v in the cache root", left)
	}
}

func TestSweepWorkDirs(t *testing.T) {
	c := openCache(t)
	stale := filepath.Join(c.Root, workDirPrefix+"dead")
	if err := os.MkdirAll(filepath.Join(stale, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	live, err := newWorkDir(c)
	if err != nil {
		t.Fatal(err)
	}
	defer live.remove(t.Logf)

	sweepWorkDirs(c, t.Logf)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unlocked scratch directory survived the sweep (stat error %v)", err)
	}
	if _, err := os.Stat(live.dir); err != nil {
		t.Errorf("locked scratch directory was swept: %v", err)
	}
	if _, err := os.Stat(c.LockPath(workDirPrefix + "dead.lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the swept directory's lock file remains (stat error %v)", err)
	}
}

func TestPullCanceled(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	r := newRemote(t, reg, "")
	if err := r.Push(testContext(t), storeEntry(t, openCache(t), testKey, smallEntry)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := openCache(t)
	_, found, err := r.Pull(ctx, testKey, c)
	if !errors.Is(err, context.Canceled) || found {
		t.Fatalf("Pull with a canceled context: found=%v err=%v, want context.Canceled", found, err)
	}
	if _, hit, _ := c.Lookup(testKey); hit {
		t.Error("a canceled pull stored an entry")
	}
}

func TestPullInvalidKey(t *testing.T) {
	// No registry runs at this address, which is fine because an invalid
	// key fails before any request is made.
	env := map[string]string{EnvRepository: "127.0.0.1:1/kernels", "HOME": t.TempDir()}
	r, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "../up", "a/b", ".hidden"} {
		_, found, err := r.Pull(testContext(t), key, openCache(t))
		if err == nil || errors.Is(err, ErrUnreachable) || found {
			t.Errorf("Pull(%q): found=%v err=%v, want a key error", key, found, err)
		}
	}
}
