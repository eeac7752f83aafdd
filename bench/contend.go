package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ktstr/ktbuild/internal/fakekernel"
)

// fixtureEnv names the directory TestMakeFixture writes the fake kernel tree
// into. The bench command sets it, because fakekernel.Write needs a
// testing.TB and so can only run inside a test binary.
const fixtureEnv = "KTBUILD_BENCH_FIXTURE"

// fixtureName is the fake tree's top directory, as in a release tarball.
const fixtureName = "linux-6.12.0"

// fixture is a generated fake kernel: a committed git tree and a tarball of
// the same files.
type fixture struct {
	tree, tarball string
}

// fakeFixture writes the fake kernel tree once per run. fakekernel.Write
// needs a testing.TB, so a test in this package writes it (TestMakeFixture).
func (s *session) fakeFixture() (fixture, error) {
	dir := filepath.Join(s.work, "fixture")
	fx := fixture{tree: filepath.Join(dir, fixtureName), tarball: filepath.Join(s.work, fixtureName+".tar.gz")}
	if _, err := os.Stat(fx.tarball); err == nil {
		return fx, nil
	}

	cmd := exec.Command("go", "test", "-count=1", "-run", "^TestMakeFixture$", "./bench")
	cmd.Dir = s.repo
	cmd.Env = append(os.Environ(), fixtureEnv+"="+fx.tree)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fx, fmt.Errorf("write the fake kernel tree with go test ./bench -run TestMakeFixture: %w\n%s", err, tail(string(out), 20))
	}
	// The tarball is made before the tree becomes a git repository, so it
	// holds the sources alone, as a release tarball does.
	if err := runIn(dir, "tar", "czf", fx.tarball, fixtureName); err != nil {
		return fx, err
	}
	for _, args := range [][]string{
		{"init", "-q"},
		{"add", "-A"},
		{"-c", "user.name=ktbuild bench", "-c", "user.email=bench@localhost", "commit", "-qm", "fake kernel"},
	} {
		if err := runIn(fx.tree, "git", args...); err != nil {
			return fx, err
		}
	}
	return fx, nil
}

func runIn(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s in %s: %w\n%s", name, strings.Join(args, " "), dir, err, tail(string(out), 20))
	}
	return nil
}

// race is the outcome of n kernel:build processes of one spec started
// together on a fresh cache.
type race struct {
	wall     time.Duration // from the first start to the last exit
	results  []procResult
	compiles int
}

// startBuilders starts n kernel:build processes of spec at once on cacheDir
// and waits for all of them.
func (s *session) startBuilders(n int, spec, cacheDir string) (race, error) {
	env := []string{"FAKE_KERNEL_DELAY=" + strconv.FormatFloat(s.cfg.delay, 'f', -1, 64)}
	var cmds []*exec.Cmd
	for range n {
		cmd, err := s.ktCommand(cacheDir, env, "-source="+spec)
		if err != nil {
			return race{}, err
		}
		cmds = append(cmds, cmd)
	}

	var procs []*started
	start := time.Now()
	for _, cmd := range cmds {
		p, err := startProc(cmd, false)
		if err != nil {
			return race{}, err
		}
		procs = append(procs, p)
	}
	r := race{}
	for _, p := range procs {
		r.results = append(r.results, p.wait())
	}
	r.wall = time.Since(start)

	for i, res := range r.results {
		if res.err != nil {
			return r, fmt.Errorf("builder %d of %d: %w", i+1, n, res.err)
		}
		if got, want := imagePath(res), imagePath(r.results[0]); got == "" || got != want {
			return r, fmt.Errorf("builder %d printed %q, builder 1 printed %q", i+1, got, want)
		}
	}
	return r, nil
}

// treeCopy copies the committed fixture tree to a fresh directory, so that
// every measured build starts from a tree no build has touched.
func (s *session) treeCopy(fx fixture, name string) (string, error) {
	parent := filepath.Join(s.work, "trees", name)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	if err := runIn(s.work, "cp", "-a", fx.tree, parent); err != nil {
		return "", err
	}
	return filepath.Join(parent, fixtureName), nil
}

// benchContendTree races -builders kernel:build processes of one clean git
// tree on a cold cache against a single build.
func benchContendTree(s *session) error {
	fx, err := s.fakeFixture()
	if err != nil {
		return err
	}
	n := s.cfg.builders
	build := func(count int) func() (time.Duration, error) {
		round := 0
		return func() (time.Duration, error) {
			round++
			name := fmt.Sprintf("x%d-%d", count, round)
			tree, err := s.treeCopy(fx, name)
			if err != nil {
				return 0, err
			}
			r, err := s.startBuilders(count, tree, filepath.Join(s.work, "caches", name))
			if err != nil {
				return 0, err
			}
			if c := fakekernel.CompileCount(tree); c != 1 {
				return 0, fmt.Errorf("%d builders of one tree compiled %d times, want 1", count, c)
			}
			return r.wall, nil
		}
	}
	return s.contentionRows("tree", n, build(1), build(n))
}

// benchContendTarball races -builders kernel:build processes of one tarball
// on a cold cache against a single build.
func benchContendTarball(s *session) error {
	fx, err := s.fakeFixture()
	if err != nil {
		return err
	}
	n := s.cfg.builders
	build := func(count int) func() (time.Duration, error) {
		round := 0
		return func() (time.Duration, error) {
			round++
			name := fmt.Sprintf("tarball-x%d-%d", count, round)
			r, err := s.startBuilders(count, fx.tarball, filepath.Join(s.work, "caches", name))
			if err != nil {
				return 0, err
			}
			// Each builder extracts its own tree, which is deleted when it
			// exits, so count the builders that ran make instead.
			if c := countContaining(r.results, "build: started"); c != 1 {
				return 0, fmt.Errorf("%d builders of one tarball compiled %d times, want 1", count, c)
			}
			return r.wall, nil
		}
	}
	return s.contentionRows("tarball", n, build(1), build(n))
}

func countContaining(results []procResult, text string) int {
	n := 0
	for _, r := range results {
		if strings.Contains(r.stderr, text) {
			n++
		}
	}
	return n
}

// contentionRows times single and racing builds in alternating rounds and
// adds the ratio row. A round that compiles more than once is an error, so a
// pass also means every race compiled once and printed one path.
func (s *session) contentionRows(kind string, n int, single, racing func() (time.Duration, error)) error {
	ds, err := s.rotate(s.cfg.repeats, nil, step{"1 build", single}, step{fmt.Sprintf("%d builds", n), racing})
	if err != nil {
		return err
	}
	one, many := median(ds[0]), median(ds[1])
	s.ratioRow(fmt.Sprintf("%d cold builds of one %s vs 1 build", n, kind), formatDuration(many), formatDuration(one), ratio(many, one), 1.2, 0)
	s.note("contend-%s: fake kernel (FAKE_KERNEL_DELAY=%gs) from internal/fakekernel, each round on a fresh copy and a fresh cache; median of %d rounds; every race compiled once and all %d builders printed the same path", kind, s.cfg.delay, s.cfg.repeats, n)
	return nil
}
