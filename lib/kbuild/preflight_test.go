package kbuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost returns a Host whose PATH holds shell scripts for every program
// except those in skip, whose include directory holds every header except
// those in skip, and whose pahole prints paholeVersion.
func fakeHost(t *testing.T, paholeVersion string, skip ...string) Host {
	t.Helper()
	bin := t.TempDir()
	include := t.TempDir()
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}

	scripts := map[string]string{
		"make": "echo 'GNU Make 4.3'", "gcc": "echo 'gcc (Fake) 12.2.0'", "flex": "true",
		"bison": "true", "bc": "true", "pahole": "echo " + paholeVersion, "cpio": "true",
	}
	for name, body := range scripts {
		if skipped[name] {
			continue
		}
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, header := range []string{"gelf.h", "openssl/opensslv.h"} {
		if skipped[header] {
			continue
		}
		path := filepath.Join(include, header)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Host{Path: []string{bin}, IncludeDirs: []string{include}, OSRelease: filepath.Join(t.TempDir(), "missing")}
}

func TestPreflightAllFound(t *testing.T) {
	tools, err := fakeHost(t, "v1.24").Preflight()
	if err != nil {
		t.Fatalf("Preflight: %v", err)
	}
	if len(tools) != len(requirements) {
		t.Fatalf("%d tools, want %d", len(tools), len(requirements))
	}
	for _, tool := range tools {
		if !tool.Found || tool.Problem != "" {
			t.Errorf("%s: found %v problem %q", tool.Name, tool.Found, tool.Problem)
		}
		switch tool.Name {
		case "pahole":
			if tool.Version != "v1.24" {
				t.Errorf("pahole version = %q, want v1.24", tool.Version)
			}
		case "C compiler":
			if !strings.HasSuffix(tool.Path, "/gcc") || tool.Version != "gcc (Fake) 12.2.0" {
				t.Errorf("compiler = %s %q, want gcc with its version", tool.Path, tool.Version)
			}
		}
	}
}

func TestPreflightMissingTools(t *testing.T) {
	tools, err := fakeHost(t, "v1.24", "flex", "openssl/opensslv.h").Preflight()
	if err == nil {
		t.Fatal("Preflight accepted a host without flex and openssl headers")
	}
	msg := err.Error()
	for _, want := range []string{
		"2 build tool(s) missing",
		"apt-get install flex libssl-dev",
		"flex: not found",
		"openssl headers: not found",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	found := map[string]bool{}
	for _, tool := range tools {
		found[tool.Name] = tool.Found
	}
	if found["flex"] || found["openssl headers"] || !found["bison"] {
		t.Errorf("found = %v, want flex and openssl headers missing, bison present", found)
	}
}

func TestPreflightOldPahole(t *testing.T) {
	_, err := fakeHost(t, "v1.15").Preflight()
	if err == nil {
		t.Fatal("Preflight accepted pahole 1.15")
	}
	for _, want := range []string{"pahole: version 1.15 is older than 1.16", "apt-get install dwarves"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}

func TestPreflightFedoraNames(t *testing.T) {
	host := fakeHost(t, "v1.24", "bc", "gelf.h")
	host.OSRelease = filepath.Join(t.TempDir(), "os-release")
	if err := os.WriteFile(host.OSRelease, []byte("NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := host.Preflight()
	if err == nil || !strings.Contains(err.Error(), "dnf install bc elfutils-libelf-devel") {
		t.Errorf("Preflight = %v, want a dnf command with Fedora package names", err)
	}
}

func TestPreflightCompilerAlternatives(t *testing.T) {
	host := fakeHost(t, "v1.24", "gcc")
	if err := os.WriteFile(filepath.Join(host.Path[0], "clang"), []byte("#!/bin/sh\necho 'clang version 16'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	compiler, pahole := host.ToolVersions()
	if compiler != "clang version 16" || pahole != "v1.24" {
		t.Errorf("ToolVersions = %q, %q, want clang and pahole", compiler, pahole)
	}
}

func TestPreflightThisHost(t *testing.T) {
	tools, _ := Preflight()
	for _, tool := range tools {
		// make runs every other test in this package, so it must be here.
		if tool.Name == "make" && !tool.Found {
			t.Errorf("make not found on this host's PATH")
		}
	}
	if len(tools) != len(requirements) {
		t.Errorf("%d tools, want %d", len(tools), len(requirements))
	}
}

func TestPaholeProblem(t *testing.T) {
	cases := map[string]bool{"v1.16": true, "v1.24": true, "v2.0": true, "v1.9": false, "v1.15": false, "garbled": true}
	for version, ok := range cases {
		if got := paholeProblem(version) == ""; got != ok {
			t.Errorf("paholeProblem(%q) ok = %v, want %v", version, got, ok)
		}
	}
}
