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
