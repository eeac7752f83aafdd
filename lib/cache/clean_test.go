package cache

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func planKeys(t *testing.T, c *Cache, opts CleanOptions) []string {
	t.Helper()
	plan, err := c.PlanClean(opts)
	if err != nil {
		t.Fatalf("PlanClean(%+v): %v", opts, err)
	}
	keys := []string{}
	for _, e := range plan {
		keys = append(keys, e.Key)
	}
	return keys
}

func TestPlanCleanKeep(t *testing.T) {
	c := openTestCache(t)
	storeAt(t, c, "v-a", "2026-03-01T00:00:00Z")
	storeAt(t, c, "v-b", "2026-02-01T00:00:00Z")
	storeAt(t, c, "v-c", "2026-01-01T00:00:00Z")
	storeAt(t, c, "x-corrupt-tarball-x86_64-kc00000000", "2027-01-01T00:00:00Z")
	os.Remove(c.EntryDir("x-corrupt-tarball-x86_64-kc00000000") + "/" + MetadataName)
	storeAt(t, c, "y-corrupt", "2027-01-01T00:00:00Z")
	os.Remove(c.EntryDir("y-corrupt") + "/bzImage")

	tests := []struct {
		opts CleanOptions
		want []string
	}{
		{CleanOptions{Keep: -1}, []string{"v-a", "v-b", "v-c", "x-corrupt-tarball-x86_64-kc00000000", "y-corrupt"}},
		{CleanOptions{Keep: 0}, []string{"v-a", "v-b", "v-c", "x-corrupt-tarball-x86_64-kc00000000", "y-corrupt"}},
		{CleanOptions{Keep: 1}, []string{"v-b", "v-c", "x-corrupt-tarball-x86_64-kc00000000", "y-corrupt"}},
		{CleanOptions{Keep: 2}, []string{"v-c", "x-corrupt-tarball-x86_64-kc00000000", "y-corrupt"}},
		{CleanOptions{Keep: 3}, []string{"x-corrupt-tarball-x86_64-kc00000000", "y-corrupt"}},
		{CleanOptions{Keep: 10}, []string{"x-corrupt-tarball-x86_64-kc00000000", "y-corrupt"}},
		{CleanOptions{Keep: -1, CorruptOnly: true}, []string{"x-corrupt-tarball-x86_64-kc00000000", "y-corrupt"}},
	}
	for _, tt := range tests {
		if got := planKeys(t, c, tt.opts); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("PlanClean(%+v) = %v, want %v", tt.opts, got, tt.want)
		}
	}
}

func TestPlanCleanCorruptOnlyConflictsWithKeep(t *testing.T) {
	c := openTestCache(t)
	for _, keep := range []int{0, 2} {
		_, err := c.PlanClean(CleanOptions{Keep: keep, CorruptOnly: true})
		if err == nil || !strings.Contains(err.Error(), "conflicts with -keep") {
			t.Errorf("PlanClean(Keep=%d, CorruptOnly) = %v, want a conflict error", keep, err)
		}
	}
}

func TestPlanCleanEveryCorruptKind(t *testing.T) {
	c := openTestCache(t)
	valid := fillCache(t, c)

	for _, opts := range []CleanOptions{{Keep: -1, CorruptOnly: true}, {Keep: len(valid)}, {Keep: 100}} {
		plan, err := c.PlanClean(opts)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, e := range plan {
			got[e.Key] = e.Kind
		}
		want := map[string]string{}
		for _, cc := range corruptCases {
			want[cc.key] = cc.kind
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("PlanClean(%+v) = %v, want every corrupt entry %v", opts, got, want)
		}
	}
}

func TestRemoveEveryKind(t *testing.T) {
	c := openTestCache(t)
	fillCache(t, c)
	plan, err := c.PlanClean(CleanOptions{Keep: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range plan {
		skipped, err := c.Remove(context.Background(), e)
		if err != nil || skipped {
			t.Errorf("Remove(%s) = skipped %v, %v", e.Key, skipped, err)
		}
		if _, err := os.Stat(e.Dir); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Remove: %v", e.Key, err)
		}
	}
	list, err := c.List()
	if err != nil || len(list) != 0 {
		t.Errorf("List after removing everything = %+v, %v", list, err)
	}
	if names := tmpDirs(t, c.Root); len(names) != 1 || names[0] != ".tmp-v-newest-1" {
		t.Errorf("Remove left store directories: %v", names)
	}

	// Removing an entry that is already gone is not an error.
	if skipped, err := c.Remove(context.Background(), plan[0]); err != nil || skipped {
		t.Errorf("second Remove(%s) = skipped %v, %v", plan[0].Key, skipped, err)
	}
}

func TestRemoveSkipsReader(t *testing.T) {
	c := openTestCache(t)
	storeAt(t, c, "k-goroutine", "2026-01-01T00:00:00Z")
	storeAt(t, c, "k-process", "2026-01-01T00:00:00Z")

	// A reader in this process holds its own open file description.
	l, err := c.ReadLock(context.Background(), "k-goroutine")
	if err != nil {
		t.Fatal(err)
	}
	e := listed(t, c, "k-goroutine")
	if skipped, err := c.Remove(context.Background(), e); err != nil || !skipped {
		t.Errorf("Remove while this process reads = skipped %v, %v; want skipped", skipped, err)
	}
	if _, ok, _ := c.Lookup("k-goroutine"); !ok {
		t.Errorf("the entry a reader holds was removed")
	}
	l.Release()
	if skipped, err := c.Remove(context.Background(), e); err != nil || skipped {
		t.Errorf("Remove after the reader left = skipped %v, %v", skipped, err)
	}

	// A reader in another process.
	child := helperCmd(t, "hold-read", "CACHE_ROOT="+c.Root, "CACHE_KEY=k-process")
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	startHelper(t, child, "locked")
	e = listed(t, c, "k-process")
	if skipped, err := c.Remove(context.Background(), e); err != nil || !skipped {
		t.Errorf("Remove while another process reads = skipped %v, %v; want skipped", skipped, err)
	}
	if _, ok, _ := c.Lookup("k-process"); !ok {
		t.Errorf("the entry another process holds was removed")
	}
	stdin.Close()
	if err := child.Wait(); err != nil {
		t.Fatalf("reader process: %v %s", err, child.Stderr)
	}
	if skipped, err := c.Remove(context.Background(), e); err != nil || skipped {
		t.Errorf("Remove after the reader process exited = skipped %v, %v", skipped, err)
	}
	if _, err := os.Stat(e.Dir); !os.IsNotExist(err) {
		t.Errorf("entry still exists: %v", err)
	}
}

// listed returns the ListEntry of key from List.
func listed(t *testing.T, c *Cache, key string) ListEntry {
	t.Helper()
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		if e.Key == key {
			return e
		}
	}
	t.Fatalf("List has no entry %s", key)
	return ListEntry{}
}

func TestRemoveSkipsReplacedEntry(t *testing.T) {
	c := openTestCache(t)
	storeAt(t, c, "k-valid", "2026-01-01T00:00:00Z")
	e := storeAt(t, c, "k-corrupt-tarball-x86_64-kc00000000", "2026-01-01T00:00:00Z")
	os.Remove(filepath.Join(e.Dir, MetadataName))
	planned := []ListEntry{listed(t, c, "k-valid"), listed(t, c, "k-corrupt-tarball-x86_64-kc00000000")}

	// Stores after the listing replace both entries with new builds.
	storeAt(t, c, "k-valid", "2026-02-01T00:00:00Z")
	storeAt(t, c, "k-corrupt-tarball-x86_64-kc00000000", "2026-02-01T00:00:00Z")

	for _, p := range planned {
		skipped, err := c.Remove(context.Background(), p)
		if err != nil || !skipped {
			t.Errorf("Remove(%s) of a replaced entry = skipped %v, %v; want skipped", p.Key, skipped, err)
		}
		if _, ok, _ := c.Lookup(p.Key); !ok {
			t.Errorf("the new build at %s was removed", p.Key)
		}
	}
}

func TestRemoveInvalidKey(t *testing.T) {
	c := openTestCache(t)
	for _, key := range []string{"", "..", "../outside", ".locks"} {
		if _, err := c.Remove(context.Background(), ListEntry{Key: key}); err == nil {
			t.Errorf("Remove(%q) = nil error, want an invalid key error", key)
		}
	}
	if _, err := os.Stat(c.Root + "/.locks"); err != nil {
		t.Errorf(".locks was touched: %v", err)
	}
}

// Keys of the entries homeRoot puts next to directories that are not
// entries.
const (
	homeValidNew    = "6.12.118-tarball-x86_64-kcb7244b33"
	homeValidOld    = "local-1a2b3c4-x86_64-kcb7244b33"
	homeEmptyDir    = "6.1.0-tarball-x86_64-kc00000000"
	homeEmptyImage  = "6.13-tarball-x86_64-kcb7244b33-xkcdeadbeef"
	homeOldKeyShape = "6.6.1-tarball-x86_64" // an old key form; its metadata.json makes it an entry
)

// homeForeign are the files of directories that are not cache entries,
// relative to the root; a name ending in "/" is a directory.
var homeForeign = []string{
	"projects/ktbuild/main.go",
	"projects/ktbuild/.git/HEAD",
	"Documents/notes.txt",
	"Documents/empty/",
	"linux-6.12/Makefile",
	"build-tarball-x86_64/",
	"kc1a2b3c4d/",
}

// homeRoot makes a cache root that is also a home directory: valid and
// corrupt entries among directories that belong to someone else.
func homeRoot(t *testing.T) *Cache {
	t.Helper()
	c := openTestCache(t)
	storeAt(t, c, homeValidNew, "2026-03-01T00:00:00Z")
	storeAt(t, c, homeValidOld, "2026-01-01T00:00:00Z")
	mustMkdir(t, c.EntryDir(homeEmptyDir))
	e := storeAt(t, c, homeEmptyImage, "2026-02-01T00:00:00Z")
	writeFile(t, e.ImagePath, nil) // : > bzImage
	mustMkdir(t, c.EntryDir(homeOldKeyShape))
	writeMeta(t, c.EntryDir(homeOldKeyShape), `{"version": "6.6.1", "sour`)
	for _, rel := range homeForeign {
		path := filepath.Join(c.Root, rel)
		dir := filepath.Dir(path)
		if strings.HasSuffix(rel, "/") {
			dir = path
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(rel, "/") {
			writeFile(t, path, []byte("someone else's "+rel))
		}
	}
	writeFile(t, filepath.Join(c.Root, "notes.txt"), []byte("a file in the root"))
	return c
}

// checkForeignIntact fails the test unless every file of homeForeign is
// still there with its content.
func checkForeignIntact(t *testing.T, c *Cache) {
	t.Helper()
	for _, rel := range homeForeign {
		path := filepath.Join(c.Root, rel)
		data, err := os.ReadFile(path)
		if strings.HasSuffix(rel, "/") {
			if info, err := os.Stat(path); err != nil || !info.IsDir() {
				t.Errorf("directory %s is gone: %v", rel, err)
			}
			continue
		}
		if err != nil || string(data) != "someone else's "+rel {
			t.Errorf("file %s = %q, %v; want it untouched", rel, data, err)
		}
	}
}

func TestCleanLeavesForeignDirs(t *testing.T) {
	corrupt := []string{homeOldKeyShape, homeEmptyDir, homeEmptyImage}
	tests := []struct {
		name      string
		opts      CleanOptions
		removed   []string
		remaining []string
	}{
		{"all", CleanOptions{Keep: -1}, append([]string{homeValidNew, homeValidOld}, corrupt...), nil},
		{"keep 0", CleanOptions{Keep: 0}, append([]string{homeValidNew, homeValidOld}, corrupt...), nil},
		{"keep 1", CleanOptions{Keep: 1}, append([]string{homeValidOld}, corrupt...), []string{homeValidNew}},
		{"keep 5", CleanOptions{Keep: 5}, corrupt, []string{homeValidNew, homeValidOld}},
		{"corrupt only", CleanOptions{Keep: -1, CorruptOnly: true}, corrupt, []string{homeValidNew, homeValidOld}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := homeRoot(t)
			got := planKeys(t, c, tt.opts)
			sortStrings(got)
			want := append([]string{}, tt.removed...)
			sortStrings(want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("PlanClean = %v, want %v", got, want)
			}
			plan, _ := c.PlanClean(tt.opts)
			for _, e := range plan {
				if skipped, err := c.Remove(context.Background(), e); err != nil || skipped {
					t.Errorf("Remove(%s) = skipped %v, %v", e.Key, skipped, err)
				}
			}
			for _, key := range tt.removed {
				if _, err := os.Stat(c.EntryDir(key)); !os.IsNotExist(err) {
					t.Errorf("%s is still there: %v", key, err)
				}
			}
			for _, key := range tt.remaining {
				if _, ok, err := c.Lookup(key); !ok || err != nil {
					t.Errorf("Lookup(%s) after the clean = hit %v, %v; want it kept", key, ok, err)
				}
			}
			checkForeignIntact(t, c)
		})
	}
}

func TestRemoveRefusesForeignDir(t *testing.T) {
	c := homeRoot(t)
	for _, name := range []string{"projects", "Documents", "linux-6.12", "build-tarball-x86_64", "kc1a2b3c4d"} {
		le := ListEntry{Key: name, Dir: c.EntryDir(name), Kind: KindMissing, Reason: "metadata.json missing"}
		skipped, err := c.Remove(context.Background(), le)
		if err == nil || !strings.Contains(err.Error(), "not a cache entry") {
			t.Errorf("Remove(%s) = skipped %v, %v; want a not-an-entry error", name, skipped, err)
		}
	}
	checkForeignIntact(t, c)
}
