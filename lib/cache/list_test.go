package cache

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// storeAt stores a small entry under key with the given built_at.
func storeAt(t *testing.T, c *Cache, key, builtAt string) Entry {
	t.Helper()
	image, vmlinux := genFiles(t, t.TempDir(), 1, 8192)
	meta := genMeta(1)
	meta.BuiltAt = builtAt
	e, err := c.Store(context.Background(), StoreRequest{Key: key, ImagePath: image, VmlinuxPath: vmlinux, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// corruptCases are entry directories broken in each way List detects.
var corruptCases = []struct {
	key  string
	kind string
	make func(t *testing.T, dir string, good []byte)
}{
	{"c-missing-tarball-x86_64-kc00000000", KindMissing, func(t *testing.T, dir string, good []byte) {
		os.Remove(filepath.Join(dir, MetadataName))
	}},
	{"c-unreadable", KindUnreadable, func(t *testing.T, dir string, good []byte) {
		os.Remove(filepath.Join(dir, MetadataName))
		mustMkdir(t, filepath.Join(dir, MetadataName))
	}},
	{"c-schema-drift", KindSchemaDrift, func(t *testing.T, dir string, good []byte) {
		writeMeta(t, dir, strings.Replace(string(good), `"arch"`, `"architecture"`, 1))
	}},
	{"c-bad-image-name", KindSchemaDrift, func(t *testing.T, dir string, good []byte) {
		writeMeta(t, dir, strings.Replace(string(good), `"image_name": "bzImage"`, `"image_name": "../bzImage"`, 1))
	}},
	{"c-malformed", KindMalformed, func(t *testing.T, dir string, good []byte) {
		writeMeta(t, dir, "version = 6.12\n")
	}},
	{"c-truncated", KindTruncated, func(t *testing.T, dir string, good []byte) {
		writeMeta(t, dir, string(good[:len(good)/3]))
	}},
	{"c-parse-error", KindParseError, func(t *testing.T, dir string, good []byte) {
		writeMeta(t, dir, strings.Replace(string(good), "gen-1", "gen-\xc3\x28", 1))
	}},
	{"c-image-missing", KindImageMissing, func(t *testing.T, dir string, good []byte) {
		os.Remove(filepath.Join(dir, "bzImage"))
	}},
	{"c-unknown", KindUnknown, func(t *testing.T, dir string, good []byte) {
		os.Remove(filepath.Join(dir, "bzImage"))
		mustMkdir(t, filepath.Join(dir, "bzImage"))
	}},
	{"c-image-empty", KindUnknown, func(t *testing.T, dir string, good []byte) {
		writeFile(t, filepath.Join(dir, "bzImage"), nil)
	}},
	{"c-image-short", KindUnknown, func(t *testing.T, dir string, good []byte) {
		writeFile(t, filepath.Join(dir, "bzImage"), bootImage(0x206)[:0x205])
	}},
	{"c-image-no-boot-header", KindUnknown, func(t *testing.T, dir string, good []byte) {
		b := bootImage(8192)
		copy(b[bzImageMagicOffset:], "HdrX")
		writeFile(t, filepath.Join(dir, "bzImage"), b)
	}},
	{"c-vmlinux-empty", KindUnknown, func(t *testing.T, dir string, good []byte) {
		writeFile(t, filepath.Join(dir, VmlinuxName), nil)
	}},
	{"c-vmlinux-not-elf", KindUnknown, func(t *testing.T, dir string, good []byte) {
		writeFile(t, filepath.Join(dir, VmlinuxName), []byte("vmlinux gen 1\nEND"))
	}},
	{"c-vmlinux-dir", KindUnknown, func(t *testing.T, dir string, good []byte) {
		os.Remove(filepath.Join(dir, VmlinuxName))
		mustMkdir(t, filepath.Join(dir, VmlinuxName))
	}},
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeMeta(t *testing.T, dir, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, MetadataName), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fillCache stores three valid entries and one corrupt entry of each case,
// plus names List must skip. It returns the valid keys newest first.
func fillCache(t *testing.T, c *Cache) []string {
	t.Helper()
	storeAt(t, c, "v-middle", "2026-02-01T00:00:00Z")
	storeAt(t, c, "v-newest", "2026-03-01T12:00:00Z")
	storeAt(t, c, "v-oldest", "2025-12-31T23:59:59Z")
	for _, cc := range corruptCases {
		e := storeAt(t, c, cc.key, "2027-01-01T00:00:00Z")
		good, err := os.ReadFile(filepath.Join(e.Dir, MetadataName))
		if err != nil {
			t.Fatal(err)
		}
		cc.make(t, e.Dir, good)
	}
	mustMkdir(t, filepath.Join(c.Root, ".hidden"))
	mustMkdir(t, filepath.Join(c.Root, ".tmp-v-newest-1"))
	if err := os.WriteFile(filepath.Join(c.Root, "stray-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"v-newest", "v-middle", "v-oldest"}
}

func TestListClassifies(t *testing.T) {
	c := openTestCache(t)
	valid := fillCache(t, c)

	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range list {
		keys = append(keys, e.Key)
	}
	wantKeys := append([]string{}, valid...)
	var corruptKeys []string
	for _, cc := range corruptCases {
		corruptKeys = append(corruptKeys, cc.key)
	}
	sortStrings(corruptKeys)
	wantKeys = append(wantKeys, corruptKeys...)
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Fatalf("List order:\n got %v\nwant %v", keys, wantKeys)
	}

	for i, e := range list[:len(valid)] {
		if !e.Valid || e.Status() != Valid || e.Kind != "" || e.Reason != "" {
			t.Errorf("%s: want a valid entry, got %+v", e.Key, e)
		}
		if e.Entry.Key != valid[i] || e.Entry.ImagePath != filepath.Join(c.Root, valid[i], "bzImage") {
			t.Errorf("%s: Entry = %+v", e.Key, e.Entry)
		}
		if e.Size < 2*8192 {
			t.Errorf("%s: Size = %d, want at least the image and vmlinux bytes", e.Key, e.Size)
		}
	}
	kinds := map[string]string{}
	for _, cc := range corruptCases {
		kinds[cc.key] = cc.kind
	}
	for _, e := range list[len(valid):] {
		if e.Valid || e.Status() != Corrupt {
			t.Errorf("%s: want corrupt, got valid", e.Key)
		}
		if e.Kind != kinds[e.Key] {
			t.Errorf("%s: kind %q (%s), want %q", e.Key, e.Kind, e.Reason, kinds[e.Key])
		}
		if e.Reason == "" || e.Dir != filepath.Join(c.Root, e.Key) {
			t.Errorf("%s: reason %q dir %q", e.Key, e.Reason, e.Dir)
		}
		if e.Size <= 0 {
			t.Errorf("%s: Size = %d, want the bytes of what is left", e.Key, e.Size)
		}
	}
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

func TestListMissingRoot(t *testing.T) {
	c := &Cache{Root: filepath.Join(t.TempDir(), "never-created")}
	list, err := c.List()
	if err != nil || len(list) != 0 {
		t.Errorf("List of a missing root = %v, %v; want nothing", list, err)
	}
}

func TestLookup(t *testing.T) {
	c := openTestCache(t)
	fillCache(t, c)

	e, ok, err := c.Lookup("v-middle")
	if err != nil || !ok {
		t.Fatalf("Lookup(v-middle) = hit %v, %v", ok, err)
	}
	if e.Meta.BuiltAt != "2026-02-01T00:00:00Z" || e.VmlinuxPath != filepath.Join(c.Root, "v-middle", VmlinuxName) {
		t.Errorf("Lookup(v-middle) = %+v", e)
	}

	for _, cc := range corruptCases {
		if _, ok, err := c.Lookup(cc.key); ok || err != nil {
			t.Errorf("Lookup(%s) = hit %v, %v; a corrupt entry must be a miss", cc.key, ok, err)
		}
	}
	for _, key := range []string{"absent", "stray-file"} {
		if _, ok, err := c.Lookup(key); ok || err != nil {
			t.Errorf("Lookup(%s) = hit %v, %v; want a miss", key, ok, err)
		}
	}
	for _, key := range []string{".hidden", "../v-middle", ""} {
		if _, _, err := c.Lookup(key); err == nil || !strings.Contains(err.Error(), "invalid cache key") {
			t.Errorf("Lookup(%q) error = %v, want an invalid key error", key, err)
		}
	}
}

func TestLookupVmlinuxMissing(t *testing.T) {
	c := openTestCache(t)
	e := storeAt(t, c, "k", "2026-01-01T00:00:00Z")
	os.Remove(e.VmlinuxPath)
	got, ok, err := c.Lookup("k")
	if err != nil || !ok {
		t.Fatalf("Lookup = hit %v, %v; an entry without its vmlinux is still a hit", ok, err)
	}
	if got.VmlinuxPath != "" {
		t.Errorf("VmlinuxPath = %q for a deleted vmlinux, want empty", got.VmlinuxPath)
	}
}

func TestTags(t *testing.T) {
	const current = "1a2b3c4d"
	tests := []struct {
		name          string
		hash, extra   *string
		want          []string
		kconfigStatus string
	}{
		{"matches", ptr(current), nil, nil, KconfigMatches},
		{"stale", ptr("00000000"), nil, []string{TagStaleKconfig}, KconfigStale},
		{"untracked", nil, nil, []string{TagUntrackedKconfig}, KconfigUntracked},
		{"extra", ptr(current), ptr("deadbeef"), []string{TagExtraKconfig}, KconfigMatches},
		{"stale and extra", ptr("00000000"), ptr("deadbeef"), []string{TagStaleKconfig, TagExtraKconfig}, KconfigStale},
		{"untracked and extra", nil, ptr("deadbeef"), []string{TagUntrackedKconfig, TagExtraKconfig}, KconfigUntracked},
	}
	for _, tt := range tests {
		e := Entry{Meta: Metadata{KtstrKconfigHash: tt.hash, ExtraKconfigHash: tt.extra}}
		if got := Tags(e, current); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Tags = %q, want %q", tt.name, got, tt.want)
		}
		if got := KconfigStatus(e.Meta, current); got != tt.kconfigStatus {
			t.Errorf("%s: KconfigStatus = %q, want %q", tt.name, got, tt.kconfigStatus)
		}
	}
	if Valid.String() != "valid" || Corrupt.String() != "corrupt" {
		t.Errorf("Status strings: %s, %s", Valid, Corrupt)
	}
}

func TestScanIgnoresForeignDirs(t *testing.T) {
	c := homeRoot(t)
	l, err := c.Scan()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range l.Entries {
		keys = append(keys, e.Key)
	}
	want := []string{homeValidNew, homeValidOld, homeEmptyDir, homeEmptyImage, homeOldKeyShape}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("Scan entries = %v, want %v", keys, want)
	}
	wantIgnored := []string{"Documents", "build-tarball-x86_64", "kc1a2b3c4d", "linux-6.12", "projects"}
	if !reflect.DeepEqual(l.Ignored, wantIgnored) {
		t.Errorf("Scan ignored = %v, want %v", l.Ignored, wantIgnored)
	}
	list, err := c.List()
	if err != nil || !reflect.DeepEqual(list, l.Entries) {
		t.Errorf("List = %v, %v; want Scan's entries", list, err)
	}
}

func TestLookupEmptyImage(t *testing.T) {
	c := homeRoot(t)
	if _, ok, err := c.Lookup(homeEmptyImage); ok || err != nil {
		t.Errorf("Lookup of an entry with an empty bzImage = hit %v, %v; want a miss", ok, err)
	}
	le := listed(t, c, homeEmptyImage)
	if le.Valid || le.Kind != KindUnknown || !strings.Contains(le.Reason, "bzImage is empty (0 bytes)") ||
		!strings.Contains(le.Reason, "kernel:build -force") || !strings.Contains(le.Reason, "kernel:clean -corruptonly") {
		t.Errorf("listed as %+v, want corrupt with the empty-image reason", le)
	}
}

func TestImageChecks(t *testing.T) {
	tests := []struct {
		name      string
		imageName string
		image     []byte
		reason    string // "" for a hit
	}{
		{"bzImage", "bzImage", bootImage(4096), ""},
		{"bzImage header only", "bzImage", bootImage(0x206), ""},
		{"bzImage empty", "bzImage", nil, "bzImage is empty (0 bytes)"},
		{"bzImage short", "bzImage", bootImage(0x206)[:0x204], "bzImage is 516 bytes, too short"},
		{"bzImage zeros", "bzImage", make([]byte, 4096), `bzImage has no x86 boot header (no "HdrS" at offset 0x202)`},
		{"arm64 Image", "Image", []byte("MZ arm64 image without an x86 header"), ""},
		{"arm64 Image empty", "Image", nil, "Image is empty (0 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openTestCache(t)
			src := filepath.Join(t.TempDir(), tt.imageName)
			writeFile(t, src, bootImage(4096))
			meta := genMeta(1)
			meta.ImageName = tt.imageName
			e, err := c.Store(context.Background(), StoreRequest{Key: testKey, ImagePath: src, Meta: meta})
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, e.ImagePath, tt.image)

			_, ok, err := c.Lookup(testKey)
			if err != nil || ok != (tt.reason == "") {
				t.Errorf("Lookup = hit %v, %v; want hit %v", ok, err, tt.reason == "")
			}
			le := listed(t, c, testKey)
			if tt.reason == "" && !le.Valid {
				t.Errorf("listed as corrupt: %s", le.Reason)
			}
			if tt.reason != "" && (le.Valid || le.Kind != KindUnknown || !strings.Contains(le.Reason, tt.reason)) {
				t.Errorf("listed as %+v, want kind %s with a reason containing %q", le, KindUnknown, tt.reason)
			}
		})
	}
}

func TestVmlinuxChecks(t *testing.T) {
	tests := []struct {
		name    string
		vmlinux []byte
		reason  string // "" for a hit
	}{
		{"elf", []byte(elfMagic + "rest"), ""},
		{"empty", nil, "vmlinux is empty (0 bytes)"},
		{"text", []byte("vmlinux"), "vmlinux is not an ELF file"},
		{"short", []byte(elfMagic[:3]), "vmlinux is not an ELF file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openTestCache(t)
			e := storeAt(t, c, testKey, "2026-01-01T00:00:00Z")
			writeFile(t, e.VmlinuxPath, tt.vmlinux)
			got, ok, err := c.Lookup(testKey)
			if err != nil || ok != (tt.reason == "") {
				t.Errorf("Lookup = hit %v, %v; want hit %v", ok, err, tt.reason == "")
			}
			if ok && got.VmlinuxPath != e.VmlinuxPath {
				t.Errorf("VmlinuxPath = %q, want %q", got.VmlinuxPath, e.VmlinuxPath)
			}
			if le := listed(t, c, testKey); tt.reason != "" && !strings.Contains(le.Reason, tt.reason) {
				t.Errorf("reason %q, want it to contain %q", le.Reason, tt.reason)
			}
		})
	}
}
