package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktstr/ktbuild/internal/fakekernel"
	"github.com/ktstr/ktbuild/lib/kernelorg/kernelorgtest"
)

func TestBuildVersionHitMakesNoRequests(t *testing.T) {
	srv := kernelorgtest.New(t)
	srv.SetReleases(kernelorgtest.Row{Moniker: "stable", Version: "6.12.3"})
	srv.AddTarballFromDir(t, "6.12.3", fakekernel.New(t, fakekernel.Options{}))
	req, out := testRequest(t, "6.12", map[string]string{"KTSTR_KERNEL_ORG_URL": srv.URL})

	first, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("first build: %v\n%s", err, out)
	}
	if !strings.HasPrefix(first.Key, "6.12.3-tarball-x86_64-kc") || first.Entry == nil {
		t.Fatalf("first build: want a stored 6.12.3 tarball entry, got %+v\n%s", first, out)
	}
	if leftovers := tempTrees(t, req.CacheDir); len(leftovers) != 0 {
		t.Errorf("downloaded trees left in the cache root: %v", leftovers)
	}

	sent := srv.RequestCount()
	for _, spec := range []string{"6.12", "6.12.3"} {
		again := req
		again.Spec = spec
		res, err := Build(context.Background(), again)
		if err != nil {
			t.Fatalf("build %s again: %v\n%s", spec, err, out)
		}
		if !res.Cached || res.ImagePath != first.ImagePath {
			t.Errorf("build %s again: want a hit on %s, got %+v", spec, first.ImagePath, res)
		}
	}
	if n := srv.RequestCount() - sent; n != 0 {
		t.Errorf("cache hits sent %d requests: %v", n, srv.Requests()[sent:])
	}
}

func TestBuildGitSpecStoresRef(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	gitRun(t, tree, "branch", "for-next/sched")
	hash := gitRun(t, tree, "rev-parse", "--short=7", "HEAD")
	spec := "git+file://" + tree + "#for-next/sched"
	req, out := testRequest(t, spec, nil)

	res, err := Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if res.Entry == nil {
		t.Fatalf("git build not stored: %+v\n%s", res, out)
	}
	if strings.Contains(res.Key, "/") || !strings.Contains(res.Key, "-git-"+hash+"-x86_64-") {
		t.Errorf("git key %q: want a key-safe ref and -git-%s-x86_64-", res.Key, hash)
	}
	var meta struct {
		Source struct {
			Type    string `json:"type"`
			GitHash string `json:"git_hash"`
			Ref     string `json:"ref"`
		} `json:"source"`
	}
	data, err := os.ReadFile(filepath.Join(res.Entry.Dir, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.Source.Type != "git" || meta.Source.Ref != "for-next/sched" || meta.Source.GitHash != hash {
		t.Errorf("metadata source = %+v, want git, raw ref for-next/sched, hash %s", meta.Source, hash)
	}
	if leftovers := tempTrees(t, req.CacheDir); len(leftovers) != 0 {
		t.Errorf("clones left in the cache root: %v", leftovers)
	}

	again, err := Build(context.Background(), req)
	if err != nil || !again.Cached {
		t.Errorf("second git build: want a hit, got %+v, %v", again, err)
	}
}

func TestBuildGitUnknownRef(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	req, out := testRequest(t, "git+file://"+tree+"#no-such-branch", nil)

	_, err := Build(context.Background(), req)
	if err == nil {
		t.Fatalf("build of an unknown ref succeeded\n%s", out)
	}
	if !strings.Contains(err.Error(), "no-such-branch") || !strings.Contains(err.Error(), tree) {
		t.Errorf("error does not name the ref and the URL: %v", err)
	}
}

func TestBuildRangeReportsEveryFailure(t *testing.T) {
	srv := kernelorgtest.New(t)
	srv.SetReleases(
		kernelorgtest.Row{Moniker: "stable", Version: "6.12.3"},
		kernelorgtest.Row{Moniker: "longterm", Version: "6.11.9"},
	)
	srv.AddTarballFromDir(t, "6.12.3", fakekernel.New(t, fakekernel.Options{}))
	req, out := testRequest(t, "6.11..6.12", map[string]string{"KTSTR_KERNEL_ORG_URL": srv.URL})

	res, err := Build(context.Background(), req)
	if err == nil {
		t.Fatalf("range with a missing release succeeded\n%s", out)
	}
	if !strings.Contains(err.Error(), "1 failure across 2 releases") || !strings.Contains(err.Error(), "6.11.9") {
		t.Errorf("error does not report the failed release: %v", err)
	}
	if !strings.HasPrefix(res.Key, "6.12.3-tarball-") {
		t.Errorf("the buildable release was not built: %+v\n%s", res, out)
	}
}

func TestBuildRangeGoesOnPastMissingSeries(t *testing.T) {
	srv := kernelorgtest.New(t)
	srv.SetReleases(kernelorgtest.Row{Moniker: "stable", Version: "6.12.3"})
	srv.AddTarballFromDir(t, "6.12.3", fakekernel.New(t, fakekernel.Options{}))
	req, out := testRequest(t, "6.11..6.12", map[string]string{"KTSTR_KERNEL_ORG_URL": srv.URL})

	res, err := Build(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "series 6.11") {
		t.Errorf("want the missing 6.11 series reported, got %v", err)
	}
	if !strings.HasPrefix(res.Key, "6.12.3-tarball-") || res.Entry == nil {
		t.Errorf("6.12.3 was not built past the missing series: %+v\n%s", res, out)
	}
}

func TestBuildRangeOfflineSendsNothing(t *testing.T) {
	srv := kernelorgtest.New(t)
	srv.SetReleases(kernelorgtest.Row{Moniker: "stable", Version: "6.12.3"})
	req, out := testRequest(t, "6.11..6.12", map[string]string{
		"KTSTR_KERNEL_ORG_URL": srv.URL,
		OfflineEnv:             "1",
	})

	_, err := Build(context.Background(), req)
	if err == nil {
		t.Fatalf("offline range build succeeded\n%s", out)
	}
	if !strings.Contains(err.Error(), OfflineEnv) {
		t.Errorf("error does not name %s: %v", OfflineEnv, err)
	}
	if n := srv.RequestCount(); n != 0 {
		t.Errorf("offline range build sent %d requests: %v", n, srv.Requests())
	}
}
