package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ktstr/ktbuild/lib/cache"
	"github.com/ktstr/ktbuild/lib/kbuild"
	"github.com/ktstr/ktbuild/lib/progress"
	"github.com/ktstr/ktbuild/lib/remote"
	"github.com/ktstr/ktbuild/lib/sandbox"
	"github.com/ktstr/ktbuild/lib/source"
)

// Result is the outcome of one build.
type Result struct {
	// Key is the cache key the kernel was looked up or stored under. A
	// dirty tree's key is never stored.
	Key string

	// Entry is the cache entry holding the kernel, or nil when nothing was
	// stored (dirty tree, post-build change, failed store).
	Entry *cache.Entry

	// ImagePath is the boot image to use: inside the entry when there is
	// one, else inside the source tree.
	ImagePath string

	// Dirty marks a kernel built from a tree with uncommitted changes, or
	// one that changed while it was being built.
	Dirty bool

	// Cached is true when the kernel came from the cache without a build.
	Cached bool
}

// Build runs the whole pipeline for req, in this order: CPU budget, source
// acquisition (cache checked first), host reservation, source-tree lock,
// re-checks, configure, make, validation, store. Everything it takes is
// released in reverse order before it returns, on success or failure.
func Build(ctx context.Context, req Request) (Result, error) {
	ctx, cancel := withCleanupMargin(ctx)
	defer cancel()
	b, err := newBuilder(&req)
	if err != nil {
		return Result{}, err
	}
	defer b.release()

	spec, err := b.resolveSpec(ctx)
	if err != nil {
		return Result{}, err
	}
	var res Result
	if spec.Kind == source.SpecRange {
		res, err = b.buildRange(ctx, spec)
	} else {
		res, err = b.buildOne(ctx, spec)
	}
	if err == nil && res.Cached {
		b.say("cache hit: %s", res.Key)
	}
	return res, err
}

// cleanupMargin is how long before the caller's deadline Build gives up, so
// that make's process group is killed and every lock released before a
// runner that exits at the deadline itself (`mage -t`) ends the process.
const cleanupMargin = 4 * time.Second

func withCleanupMargin(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok || time.Until(deadline) < 2*cleanupMargin {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, deadline.Add(-cleanupMargin))
}

// builder carries the state of one Build call between its steps.
type builder struct {
	req   *Request
	out   io.Writer
	cache *cache.Cache
	frag  fragments
	arch  string
	log   *slog.Logger

	bypass  bool             // KTSTR_BYPASS_LLC_LOCKS: no LLC locks, sandbox or source lock
	jobs    int              // make -j
	sandbox *sandbox.Sandbox // nil without a cpuset sandbox

	remote        *remote.Remote // KTSTR_REMOTE_CACHE, nil when unset
	remoteChecked bool
	remoteMissed  string // key the remote cache already did not have
	// remoteTimedOut is set when a pull timed out, so the push after the
	// build does not wait for the same silent registry again.
	remoteTimedOut bool

	work string // this process's work directory, "" until first used

	// releases run in reverse order when the build ends.
	releases []func()
}

func newBuilder(req *Request) (*builder, error) {
	return openBuilder(req, false)
}

// openBuilder is newBuilder, or with readOnly a builder for lookups only:
// its cache is opened without writing, and no work directory is swept.
func openBuilder(req *Request, readOnly bool) (*builder, error) {
	b := &builder{req: req, out: req.stderr(), arch: kbuild.HostArch()}
	b.log = slog.New(slog.NewTextHandler(b.out, &slog.HandlerOptions{Level: logLevel(req.Verbose)}))

	frag, err := loadFragments(req)
	if err != nil {
		return nil, err
	}
	b.frag = frag

	root, err := resolveRoot(req.CacheDir, req.Getenv)
	if err != nil {
		return nil, err
	}
	if readOnly {
		b.cache, err = cache.OpenReadOnly(root)
		return b, err
	}
	if b.cache, err = cache.Open(root); err != nil {
		return nil, err
	}
	b.sweepWorkDirs()
	return b, nil
}

func logLevel(verbose bool) slog.Level {
	if verbose {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// onRelease registers fn to run when the build ends; later registrations run
// first, so resources are released in the reverse order of acquisition.
func (b *builder) onRelease(fn func()) {
	b.releases = append(b.releases, fn)
}

func (b *builder) release() {
	for i := len(b.releases) - 1; i >= 0; i-- {
		b.releases[i]()
	}
	b.releases = nil
}

func (b *builder) say(format string, args ...any) {
	fmt.Fprintf(b.out, "ktbuild: "+format+"\n", args...)
}

func (b *builder) suffix() string {
	return cache.KconfigSuffix(b.frag.baseHash, b.frag.extraHash)
}

// buildOne builds a single kernel spec.
func (b *builder) buildOne(ctx context.Context, spec source.Spec) (Result, error) {
	budget, err := b.resolveBudget()
	if err != nil {
		return Result{}, err
	}

	acq, hit, err := b.acquire(ctx, spec)
	if err != nil || hit != nil {
		return derefResult(hit), err
	}
	if !acq.src.Dirty {
		if hit := b.pullRemote(ctx, acq.key); hit != nil {
			return *hit, nil
		}
	}

	if err := b.reserve(ctx, budget); err != nil {
		return Result{}, err
	}

	if acq.src.Origin == source.OriginLocal {
		if hit, err := b.lockSourceTree(ctx, acq); err != nil || hit != nil {
			return derefResult(hit), err
		}
	}

	if b.req.Clean {
		if err := b.mrproper(ctx, acq); err != nil {
			return Result{}, err
		}
	}

	built, err := b.compile(ctx, acq)
	if err != nil {
		return Result{}, err
	}

	if acq.src.Dirty {
		b.sayDirtyHint(acq, built.image)
		return Result{Key: acq.key, ImagePath: built.image, Dirty: true}, nil
	}

	if changed := b.postBuildRecheck(acq); changed {
		return Result{Key: acq.key, ImagePath: built.image, Dirty: true}, nil
	}

	return b.store(ctx, acq, built)
}

func derefResult(r *Result) Result {
	if r == nil {
		return Result{}
	}
	return *r
}

// acquired is a source ready to build, with the cache key it builds into.
type acquired struct {
	src *source.Acquired
	key string
}

// built holds the outputs of make and the facts recorded about them.
type built struct {
	image   string
	vmlinux string // "" when the build produced none
	logPath string
	facts   cache.BuildFacts
	config  string // CRC32 of the final .config
}

// compile configures, builds and validates the tree, and checks the BTF of
// the vmlinux it produced.
func (b *builder) compile(ctx context.Context, acq *acquired) (_ *built, err error) {
	dir := acq.src.Dir
	logPath, err := b.newLogPath(acq.key)
	if err != nil {
		return nil, err
	}
	res := &built{logPath: logPath}
	env := os.Environ()
	rep := progress.New(b.out)
	defer func() { endProgress(rep, err) }()

	local := acq.src.Origin == source.OriginLocal && !acq.src.IsTemp
	var before, user string // CRC32s of the .config before configure and of the user's own
	if local {
		if err := b.recoverConfigure(dir); err != nil {
			return nil, err
		}
		if err := b.setAsideStaleConfig(dir); err != nil {
			return nil, err
		}
		if before, user, err = b.userConfig(dir, acq); err != nil {
			return nil, err
		}
		b.beginConfigure(dir, user)
	}

	start := time.Now()
	rep.Phase("configure")
	cfg, err := kbuild.Configure(ctx, kbuild.ConfigureRequest{
		Dir: dir, Fragment: b.frag.base, Extra: b.frag.extra, ExtraName: b.frag.extraName,
		Env: env, LogPath: logPath, Out: b.out,
	})
	if local {
		// Mark the .config as ktbuild's now, so a build that fails after
		// configure does not leave it to pass for the user's own.
		b.markConfig(dir, before, user)
		endConfigure(dir)
	}
	if err != nil {
		return nil, err
	}
	b.log.Debug("configured", "ran", cfg.Ran, "skipped", cfg.Skipped)
	// A dropped critical option must fail now, not after a long make.
	if err := kbuild.Validate(dir, b.frag.extraName); err != nil {
		return nil, err
	}
	res.facts.ConfigureSecs = time.Since(start).Seconds()

	start = time.Now()
	rep.Phase("build")
	mk, err := kbuild.Make(ctx, kbuild.MakeRequest{
		Dir: dir, Jobs: b.jobs, Env: env, LogPath: logPath, Progress: rep,
		Verbose: b.verboseWriter(), Wrap: b.wrapMake, ExpectedObjects: b.expectedObjects(acq),
	})
	if err != nil {
		return nil, err
	}
	res.facts.BuildSecs = time.Since(start).Seconds()
	res.facts.Objects = mk.Objects
	res.facts.MakeJobs = b.jobs

	if err := kbuild.Validate(dir, b.frag.extraName); err != nil {
		return nil, err
	}
	if res.config, err = cache.FileCRC32(filepath.Join(dir, ".config")); err != nil {
		return nil, fmt.Errorf("cannot hash the final .config: %w", err)
	}

	if local {
		mark := configMarker{crc: res.config, suffix: b.suffix(), userConfig: user}
		if err := writeConfigMarker(dir, mark); err != nil {
			b.warnf("%v", err)
		}
		rep.Phase("compile_commands.json")
		if err := kbuild.CompileCommands(ctx, dir, b.jobs, env, logPath); err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			b.warnf("compile_commands.json not generated: %v", err)
		}
	}

	if res.image, err = kbuild.FindImage(dir, b.arch); err != nil {
		return nil, err
	}
	if vmlinux, ok := kbuild.FindVmlinux(dir); ok {
		if err := kbuild.CheckBTF(vmlinux); err != nil {
			return nil, fmt.Errorf("%w — the kernel at %s is not cached", err, res.image)
		}
		res.vmlinux = vmlinux
	} else {
		b.say("warning: no vmlinux in %s — caching the kernel without it, so BPF tools cannot read its BTF from the cache", dir)
	}
	res.facts.Compiler, res.facts.Pahole = kbuild.ToolVersions()
	return res, nil
}

// endProgress ends rep's phase as done, or as failed when err is set.
func endProgress(rep *progress.Reporter, err error) {
	if err != nil {
		rep.Fail()
		return
	}
	rep.Done()
}

// byteProgress starts a progress reporter for a phase measured in bytes.
// The caller ends it with Done.
func (b *builder) byteProgress(phase string) *progress.Reporter {
	rep := progress.New(b.out)
	rep.Phase(phase)
	return rep
}

func (b *builder) verboseWriter() io.Writer {
	if b.req.Verbose {
		return b.out
	}
	return nil
}

// newLogPath returns a fresh build log path under the cache root. Logs of
// failed builds stay there; a stored entry keeps its own copy.
func (b *builder) newLogPath(key string) (string, error) {
	dir := filepath.Join(b.cache.Root, ".logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		hint := "check that the cache root is writable"
		if errors.Is(err, syscall.ENOTDIR) {
			hint = "move the file at that path out of the cache root"
		}
		return "", fmt.Errorf("cannot create the build log directory %s: %w — %s", dir, err, hint)
	}
	pruneLogs(dir, time.Now())
	name := fmt.Sprintf("%s-%s-%d.log", key, time.Now().UTC().Format("20060102T150405"), os.Getpid())
	return filepath.Join(dir, name), nil
}

// logMaxAge and logMaxCount bound how long and how many build logs .logs keeps.
const (
	logMaxAge   = 14 * 24 * time.Hour
	logMaxCount = 50
)

// pruneLogs removes the logs in dir older than logMaxAge and all but the
// newest logMaxCount-1, leaving room for the next. Errors are ignored.
func pruneLogs(dir string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type logFile struct {
		path  string
		mtime time.Time
	}
	var logs []logFile
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		logs = append(logs, logFile{filepath.Join(dir, e.Name()), info.ModTime()})
	}
	slices.SortFunc(logs, func(a, b logFile) int { return b.mtime.Compare(a.mtime) })
	for i, l := range logs {
		if i >= logMaxCount-1 || now.Sub(l.mtime) > logMaxAge {
			os.Remove(l.path)
		}
	}
}

func (b *builder) mrproper(ctx context.Context, acq *acquired) error {
	if acq.src.Origin != source.OriginLocal || acq.src.IsTemp {
		b.say("-clean has no effect on a freshly extracted or cloned tree — building it as is")
		return nil
	}
	logPath, err := b.newLogPath(acq.key)
	if err != nil {
		return err
	}
	b.say("running make mrproper in %s", acq.src.Dir)
	if err := kbuild.MrProper(ctx, acq.src.Dir, os.Environ(), logPath); err != nil {
		return err
	}
	// mrproper removed .config, so the key no longer names a user config.
	if !acq.src.Dirty {
		acq.key, err = b.localKey(acq.src)
	}
	return err
}

func (b *builder) sayDirtyHint(acq *acquired, image string) {
	if !acq.src.IsGit {
		b.say("built %s from a tree that is not under git, so it is not cached — put the tree under git, or build a -version or -git spec, to get a cached, reusable kernel", image)
		return
	}
	if acq.src.OnlyConfigDirty {
		b.say("built %s from a tree with uncommitted changes, so it is not cached — %s", image, tracksConfigHint)
		return
	}
	b.say("built %s from a tree with uncommitted changes, so it is not cached — commit or stash your changes to get a cached, reusable kernel", image)
}

// tracksConfigHint explains why a tree whose .config is tracked in git
// turns dirty on every build.
const tracksConfigHint = "the tree tracks .config in git and configuring the kernel rewrites it, so untrack it with `git rm --cached .config`, commit, and rebuild to get a cached, reusable kernel"

// ErrNotCached marks a lookup that found no cached kernel: a cache-key spec
// the cache does not hold, or a Path miss. Test for it with errors.Is.
var ErrNotCached = errors.New("not in the cache")
