package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/ktstr/ktbuild/kconfig"
	"github.com/ktstr/ktbuild/lib/cache"
	"github.com/ktstr/ktbuild/lib/gitsrc"
	"github.com/ktstr/ktbuild/lib/kbuild"
	"github.com/ktstr/ktbuild/lib/kernelorg"
	"github.com/ktstr/ktbuild/lib/remote"
	"github.com/ktstr/ktbuild/lib/smoke"
	"github.com/ktstr/ktbuild/lib/source"
)

// SourceFlags are the source flags of kernel:build and the targets that
// name a kernel like it. A nil field was not given; a pointer to "" was
// given empty, which is an error rather than "use the default", so that
// -source=$UNSET_VARIABLE never builds some other kernel.
type SourceFlags struct {
	Source, Version, Git, Ref *string
}

// Spec turns the flags into one spec string, rejecting empty values and
// combinations that name two sources. No flag at all means "default".
func (f SourceFlags) Spec() (string, error) {
	for _, flag := range []struct {
		name  string
		value *string
	}{{"source", f.Source}, {"version", f.Version}, {"git", f.Git}, {"ref", f.Ref}} {
		if flag.value != nil && strings.TrimSpace(*flag.value) == "" {
			return "", fmt.Errorf("-%s is empty — give it a value, or leave the flag out to use the default kernel", flag.name)
		}
	}
	value := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	sourcePath, version, gitURL, ref := value(f.Source), value(f.Version), value(f.Git), value(f.Ref)

	if ref != "" && gitURL == "" {
		return "", fmt.Errorf("-ref=%s needs -git=URL — name the repository the ref belongs to", ref)
	}
	var given []string
	if sourcePath != "" {
		given = append(given, "-source")
	}
	if version != "" {
		given = append(given, "-version")
	}
	if gitURL != "" {
		given = append(given, "-git")
	}
	if len(given) > 1 {
		return "", fmt.Errorf("%s name different kernels — pass only one source flag", strings.Join(given, " and "))
	}
	switch {
	case sourcePath != "":
		// A bare name like "linux" would parse as a cache key; a path spec
		// needs a slash or a leading dot.
		if !strings.ContainsRune(sourcePath, '/') && !strings.HasPrefix(sourcePath, ".") && !strings.HasPrefix(sourcePath, "~") {
			sourcePath = "./" + sourcePath
		}
		return sourcePath, nil
	case version != "":
		spec, err := source.ParseSpec(version)
		if err != nil {
			return "", fmt.Errorf("-version=%s: %w", version, err)
		}
		if spec.Kind != source.SpecVersion && spec.Kind != source.SpecRange {
			return "", fmt.Errorf("-version=%s is not a kernel version — expected MAJOR.MINOR[.PATCH][-rcN] such as 6.12 or 6.15-rc3, or a range such as 6.10..6.12", version)
		}
		return version, nil
	case gitURL != "":
		if ref == "" {
			return "", fmt.Errorf("-git=%s needs -ref=REF — name the branch or tag to build", gitURL)
		}
		return "git+" + gitURL + "#" + ref, nil
	}
	return "", nil
}

// Path finds a cached kernel for the request's spec without building it.
// A miss is an error that names the command that builds the kernel.
func Path(ctx context.Context, req Request) (Result, error) {
	b, err := openBuilder(&req, true)
	if err != nil {
		return Result{}, err
	}
	defer b.release()
	spec, err := b.resolveSpec(ctx)
	if err != nil {
		return Result{}, err
	}

	var hit *Result
	switch {
	case spec.Kind == source.SpecCacheKey:
		hit, err = b.lookupKey(spec.Key)
	case spec.Kind == source.SpecPath && source.IsTarball(spec.Path):
		var canonical string
		var info os.FileInfo
		if canonical, info, err = statTarball(spec.Path); err == nil {
			origin := cache.TarballOrigin{Path: canonical, Size: info.Size(), MtimeSecs: info.ModTime().Unix()}
			hit, err = b.cachedTarball(origin)
			if err == nil && hit == nil {
				hit, _, err = b.tarballKeyHit(ctx, origin)
			}
		}
	case spec.Kind == source.SpecPath:
		var src *source.Acquired
		if src, err = source.OpenLocal(spec.Path); err == nil && src.Dirty {
			return Result{}, fmt.Errorf("%s has uncommitted changes, so it is %w — commit or stash them, then run kernel:build", src.LocalPath, ErrNotCached)
		}
		if err == nil {
			var key string
			if key, err = b.localKey(src); err == nil {
				hit, err = b.cached(key)
			}
		}
	case spec.Kind == source.SpecVersion:
		hit, err = b.cachedVersion(spec.Version)
	case spec.Kind == source.SpecGit:
		var full string
		if full, err = gitsrc.RemoteHash(ctx, spec.GitURL, spec.GitRef); err == nil {
			hit, err = b.cached(cache.GitKey(spec.GitRef, gitsrc.ShortHash(full), b.arch, b.suffix()))
		}
	default:
		return Result{}, fmt.Errorf("kernel:path takes one kernel, not the %s %s — name a single version", spec.Kind, spec.Raw)
	}
	if err != nil {
		return Result{}, err
	}
	if hit == nil {
		return Result{}, fmt.Errorf("%w: no kernel for %s in %s — run `mage kernel:build` with the same flags first", ErrNotCached, spec.Raw, b.cache.Root)
	}
	return *hit, nil
}

// ListRequest configures List.
type ListRequest struct {
	JSON bool
	// CacheDir is the cache root. Empty means the root that
	// KTSTR_CACHE_DIR, XDG_CACHE_HOME or HOME names, read through Getenv.
	CacheDir string
	// Stdout and Stderr take the listing and notes. nil means os.Stdout
	// and os.Stderr.
	Stdout, Stderr io.Writer
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

// OfflineEnv names the variable that keeps ktbuild off the network: no
// kernel.org lookups for the default kernel or for cache:list's EOL tag.
const OfflineEnv = "KTBUILD_OFFLINE"

// releasesTimeout bounds cache:list's releases.json fetch for the EOL tag.
const releasesTimeout = 5 * time.Second

// fetchReleases returns kernel.org's release list for the EOL tag, or nil
// with a one-line note on w when it cannot be had.
func fetchReleases(ctx context.Context, getenv func(string) string, w io.Writer) []kernelorg.Release {
	if getenv(OfflineEnv) != "" {
		return nil
	}
	client := kernelorg.NewClient()
	client.Base = strings.TrimRight(getenv(kernelorg.BaseURLEnv), "/")
	ctx, cancel := context.WithTimeout(ctx, releasesTimeout)
	defer cancel()
	releases, err := client.Releases(ctx)
	if err != nil {
		fmt.Fprintf(w, "note: no EOL tags — cannot fetch the kernel.org release list: %v\n", err)
		return nil
	}
	return releases
}

// listRow is one cache entry as cache:list -json prints it.
type listRow struct {
	Key           string          `json:"key"`
	Status        string          `json:"status"`
	Path          string          `json:"path"`
	Image         string          `json:"image,omitempty"`
	SizeBytes     int64           `json:"size_bytes"`
	KconfigStatus string          `json:"kconfig_status,omitempty"`
	Tags          []string        `json:"tags"`
	CorruptKind   string          `json:"corrupt_kind,omitempty"`
	CorruptReason string          `json:"corrupt_reason,omitempty"`
	Metadata      *cache.Metadata `json:"metadata,omitempty"`
}

// List prints the cache's entries: a table for people, or JSON.
func List(ctx context.Context, req ListRequest) error {
	req.Stdout, req.Stderr = orStdout(req.Stdout), orStderr(req.Stderr)
	c, err := openCacheEnv(req.CacheDir, req.Getenv, true)
	if err != nil {
		return err
	}
	listing, err := c.Scan()
	if err != nil {
		return err
	}
	entries := listing.Entries
	if n := len(listing.Ignored); n > 0 {
		ignored := "1 directory that is not a cache entry"
		if n > 1 {
			ignored = fmt.Sprintf("%d directories that are not cache entries", n)
		}
		fmt.Fprintf(req.Stderr, "note: ignored %s in %s (first: %s) — check that KTSTR_CACHE_DIR names the kernel cache\n", ignored, c.Root, listing.Ignored[0])
	}
	getenv := req.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var releases []kernelorg.Release
	if len(entries) > 0 {
		releases = fetchReleases(ctx, getenv, req.Stderr)
	}
	current := kconfig.FragmentHash()
	rows := make([]listRow, 0, len(entries))
	for _, le := range entries {
		row := listRow{Key: le.Key, Path: le.Dir, SizeBytes: le.Size, Tags: []string{}}
		if !le.Valid {
			row.Status, row.CorruptKind, row.CorruptReason = "corrupt", le.Kind, le.Reason
			rows = append(rows, row)
			continue
		}
		meta := le.Entry.Meta
		row.Status, row.Image, row.Metadata = "valid", le.Entry.ImagePath, &meta
		row.Tags = append(row.Tags, cache.Tags(le.Entry, current)...)
		if meta.Version != nil && kernelorg.IsEOL(releases, *meta.Version) {
			row.Tags = append(row.Tags, "EOL")
		}
		row.KconfigStatus = kconfigStatus(meta, current)
		rows = append(rows, row)
	}

	if req.JSON {
		enc := json.NewEncoder(req.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(req.Stderr, "no cached kernels in %s\n", c.Root)
		return nil
	}
	printTable(req.Stdout, entries, rows)
	printLegend(req.Stderr, rows)
	return nil
}

func kconfigStatus(m cache.Metadata, current string) string {
	switch {
	case m.KtstrKconfigHash == nil:
		return "untracked"
	case *m.KtstrKconfigHash == current:
		return "current"
	}
	return "stale"
}

func printTable(w io.Writer, entries []cache.ListEntry, rows []listRow) {
	var table bytes.Buffer
	defer func() {
		// A row without tags would end in the padding of the SIZE column.
		for line := range strings.Lines(table.String()) {
			fmt.Fprintln(w, strings.TrimRight(line, " \n"))
		}
	}()
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVERSION\tSOURCE\tARCH\tAGE\tSIZE\tTAGS")
	for i, row := range rows {
		if row.Status != "valid" {
			// The reason goes last, where its length widens no column.
			fmt.Fprintf(tw, "%s\tcorrupt (%s)\t\t\t\t%s\t%s\n", row.Key, row.CorruptKind, humanSize(row.SizeBytes), row.CorruptReason)
			continue
		}
		m := entries[i].Entry.Meta
		version := "-"
		if m.Version != nil {
			version = *m.Version
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Key, version, m.Source.Type, m.Arch, age(m.BuiltAt), humanSize(row.SizeBytes), strings.Join(row.Tags, ", "))
	}
	tw.Flush()
}

// tagLegend explains each tag cache:list can show.
var tagLegend = map[string]string{
	"stale kconfig":     "built with an older kconfig fragment than this ktbuild embeds; rebuild with -force",
	"untracked kconfig": "built without a recorded fragment hash, e.g. by an older tool",
	"extra kconfig":     "built with an extra fragment (-extrakconfig) on top",
	"EOL":               "the kernel series is no longer maintained on kernel.org",
}

func printLegend(w io.Writer, rows []listRow) {
	seen := map[string]bool{}
	for _, row := range rows {
		for _, tag := range row.Tags {
			if !seen[tag] {
				seen[tag] = true
				if text, ok := tagLegend[tag]; ok {
					fmt.Fprintf(w, "%s: %s\n", tag, text)
				}
			}
		}
	}
}

func age(builtAt string) string {
	t, err := time.Parse("2006-01-02T15:04:05Z", builtAt)
	if err != nil {
		return "?"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// sweepLeftovers removes what killed builds, stores, pushes and pulls left
// under the cache root, none of which a live process holds, and returns how
// many directories went. Entries are not touched.
func sweepLeftovers(c *cache.Cache, out io.Writer) int {
	before := leftoverDirs(c.Root)
	warn := func(format string, args ...any) { fmt.Fprintf(out, "warning: "+format+"\n", args...) }
	b := &builder{cache: c, out: out}
	b.sweepWorkDirs()
	c.SweepStores(warn)
	remote.SweepScratch(c, warn)
	swept := 0
	for _, name := range before {
		if _, err := os.Lstat(filepath.Join(c.Root, name)); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		swept++
		// The work directory sweep names what it removes itself.
		if !strings.HasPrefix(name, workPrefix) {
			fmt.Fprintf(out, "removed %s, left by an interrupted store, push or pull\n", filepath.Join(c.Root, name))
		}
	}
	return swept
}

// leftoverDirs lists the work, store and scratch directories in root.
func leftoverDirs(root string) []string {
	dirents, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var names []string
	for _, d := range dirents {
		name := d.Name()
		if d.IsDir() && (strings.HasPrefix(name, workPrefix) || strings.HasPrefix(name, ".tmp-") || strings.HasPrefix(name, ".remote-")) {
			names = append(names, name)
		}
	}
	return names
}

// orStdout returns w, or os.Stdout when w is nil.
func orStdout(w io.Writer) io.Writer {
	if w == nil {
		return os.Stdout
	}
	return w
}

// orStderr returns w, or os.Stderr when w is nil.
func orStderr(w io.Writer) io.Writer {
	if w == nil {
		return os.Stderr
	}
	return w
}

// openCache opens the cache root dir, or the default root when dir is "".
// readOnly opens it for reading alone, creating nothing.
func openCache(dir string, readOnly bool) (*cache.Cache, error) {
	return openCacheEnv(dir, nil, readOnly)
}

// resolveRoot returns dir, or when it is empty the cache root that the
// environment names, read through getenv (nil means the process's).
func resolveRoot(dir string, getenv func(string) string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	if getenv == nil {
		return cache.ResolveRoot()
	}
	return cache.ResolveRootLookup(func(name string) (string, bool) {
		value := getenv(name)
		return value, value != ""
	})
}

// openCacheEnv is openCache with the cache root's variables read through
// getenv (nil means the process environment) when dir is empty.
func openCacheEnv(dir string, getenv func(string) string, readOnly bool) (*cache.Cache, error) {
	dir, err := resolveRoot(dir, getenv)
	if err != nil {
		return nil, err
	}
	if readOnly {
		return cache.OpenReadOnly(dir)
	}
	return cache.Open(dir)
}

// CleanRequest configures Clean.
type CleanRequest struct {
	Keep        *int // nil: no valid entry is kept
	CorruptOnly bool
	Force       bool
	CacheDir    string
	Stdin       *os.File
	// Stdout and Stderr take the plan and the progress. nil means os.Stdout
	// and os.Stderr.
	Stdout, Stderr io.Writer
}

// Clean removes cached kernels: corrupt entries always, valid ones beyond
// the Keep newest. Without Force it prompts on a terminal, and without one
// it returns an error.
func Clean(ctx context.Context, req CleanRequest) error {
	if req.Keep != nil && *req.Keep < 0 {
		return fmt.Errorf("invalid -keep=%d: expected 0 or more entries to keep", *req.Keep)
	}
	if req.Keep != nil && req.CorruptOnly {
		return fmt.Errorf("-corruptonly and -keep conflict: -corruptonly keeps every valid entry — pass one of them")
	}
	req.Stdout, req.Stderr = orStdout(req.Stdout), orStderr(req.Stderr)
	c, err := openCache(req.CacheDir, false)
	if err != nil {
		return err
	}
	swept := sweepLeftovers(c, req.Stderr)
	opts := cache.CleanOptions{Keep: -1, CorruptOnly: req.CorruptOnly}
	if req.Keep != nil {
		opts.Keep = *req.Keep
	}
	doomed, err := c.PlanClean(opts)
	if err != nil {
		return err
	}
	if len(doomed) == 0 {
		if swept == 0 {
			fmt.Fprintln(req.Stderr, "nothing to remove")
		}
		return nil
	}

	for _, e := range doomed {
		state := "valid"
		if !e.Valid {
			state = "corrupt: " + e.Reason
		}
		fmt.Fprintf(req.Stderr, "remove %s (%s, %s)\n", e.Key, state, humanSize(e.Size))
	}
	if !req.Force {
		if req.Stdin == nil || !term.IsTerminal(int(req.Stdin.Fd())) {
			return fmt.Errorf("not removing %s without confirmation: no terminal to prompt on — add -force", entryCount(len(doomed)))
		}
		fmt.Fprintf(req.Stderr, "remove %s? [y/N] ", entryCount(len(doomed)))
		line, _ := bufio.NewReader(req.Stdin).ReadString('\n')
		if answer := strings.ToLower(strings.TrimSpace(line)); answer != "y" && answer != "yes" {
			fmt.Fprintln(req.Stderr, "nothing removed")
			return nil
		}
	}

	removed := 0
	for _, e := range doomed {
		skipped, err := c.Remove(ctx, e)
		switch {
		case err != nil:
			return fmt.Errorf("removing %s: %w", e.Key, err)
		case skipped:
			fmt.Fprintf(req.Stderr, "skipped %s: in use by a reader — run kernel:clean again later\n", e.Key)
		default:
			removed++
		}
	}
	fmt.Fprintf(req.Stderr, "removed %d of %s from %s\n", removed, entryCount(len(doomed)), c.Root)
	return nil
}

func entryCount(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}

// Doctor checks the build toolchain and prints each tool's state, then the
// install command for what is missing.
func Doctor(ctx context.Context, w io.Writer) error {
	tools, err := kbuild.Preflight()
	// One layout for every line: status, name, then the finding.
	for _, t := range tools {
		state, detail := "ok", t.Why
		if !t.Found {
			state, detail = "MISSING", t.Why+" (Debian package "+t.Package+")"
		} else if t.Version != "" {
			detail = t.Version + " — " + t.Why
		}
		fmt.Fprintf(w, "%-4s %s: %s\n", state, t.Name, detail)
	}
	for _, c := range smoke.Doctor(ctx, "") {
		fmt.Fprintln(w, c.String())
	}
	return err
}
