package kernelorg

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// Release is one row of kernel.org's releases.json.
type Release struct {
	// Moniker is the row's kind: "mainline", "stable" or "longterm".
	Moniker string
	Version Version
	// EOL is the row's "iseol" flag: the series gets no more releases.
	EOL bool
}

// releasesLimit bounds releases.json; the real file is a few kilobytes.
const releasesLimit = 4 << 20

// Releases fetches releases.json and returns its rows in file order.
// Rows with a missing moniker or a version that is not a release number
// (linux-next snapshots, for instance) are skipped. The first successful
// fetch is cached for the life of the Client.
func (c *Client) Releases(ctx context.Context) ([]Release, error) {
	c.mu.Lock()
	cached := c.releases
	c.mu.Unlock()
	if cached != nil {
		return cached, nil
	}

	url := c.ReleasesURL()
	resp, err := c.get(ctx, url, "releases.json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	br := bufio.NewReader(resp.Body)
	if startsWithMarkup(br) {
		return nil, htmlError(url, "releases.json")
	}
	data, err := readLimited(br, releasesLimit, url, "releases.json")
	if err != nil {
		return nil, err
	}
	releases, err := parseReleases(data)
	if err != nil {
		return nil, fmt.Errorf("kernel.org: %s is not valid releases.json: %w — check %s", url, err, BaseURLEnv)
	}

	c.mu.Lock()
	c.releases = releases
	c.mu.Unlock()
	return releases, nil
}

func parseReleases(data []byte) ([]Release, error) {
	var doc struct {
		Releases []struct {
			Moniker string `json:"moniker"`
			Version string `json:"version"`
			IsEOL   bool   `json:"iseol"`
		} `json:"releases"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}

	releases := make([]Release, 0, len(doc.Releases))
	for _, row := range doc.Releases {
		v, err := ParseVersion(row.Version)
		if row.Moniker == "" || err != nil {
			slog.Debug("kernel.org: skipping releases.json row", "moniker", row.Moniker, "version", row.Version)
			continue
		}
		releases = append(releases, Release{Moniker: row.Moniker, Version: v, EOL: row.IsEOL})
	}
	if len(releases) == 0 {
		return nil, errors.New("no usable rows in releases[]")
	}
	return releases, nil
}

// minStablePatch keeps a series' first few releases, which still collect
// many fixes, out of "latest stable".
const minStablePatch = 8

// LatestStable returns the first stable or longterm release in releases.json
// whose patch number is at least 8. A row flagged EOL still counts.
func (c *Client) LatestStable(ctx context.Context) (string, error) {
	releases, err := c.Releases(ctx)
	if err != nil {
		return "", err
	}
	for _, r := range releases {
		if (r.Moniker == "stable" || r.Moniker == "longterm") && r.Version.Patch >= minStablePatch {
			return r.Version.String(), nil
		}
	}
	return "", withKind(ErrNotFound, fmt.Errorf("kernel.org: %s lists no stable or longterm release with patch %d or later — pass -version=MAJOR.MINOR.PATCH", c.ReleasesURL(), minStablePatch))
}

// Resolve turns a version request into an exact version: "M.m" becomes the
// newest release of that series, "M.m.p" and "M.m-rcN" are returned as they
// are, and "M.m.0" becomes "M.m" after kernel.org's tarball names.
//
// A series missing from releases.json (end of life) is resolved by probing
// its tarballs with HEAD requests, so only series requests touch the network.
func (c *Client) Resolve(ctx context.Context, version string) (string, error) {
	v, series, err := parseVersion(version)
	if err != nil {
		return "", err
	}
	if !series {
		return v.String(), nil
	}
	newest, err := c.newestInSeries(ctx, v.Major, v.Minor)
	if err != nil {
		return "", err
	}
	return newest.String(), nil
}

// newestInSeries looks the series up in releases.json, and probes its
// tarballs when the file does not list it.
func (c *Client) newestInSeries(ctx context.Context, major, minor int) (Version, error) {
	releases, err := c.Releases(ctx)
	if err != nil {
		return Version{}, err
	}
	if v, ok := newestListed(releases, major, minor); ok {
		return v, nil
	}

	v, found, err := c.probeSeries(ctx, major, minor)
	if err != nil {
		return Version{}, err
	}
	if found {
		return v, nil
	}

	series := fmt.Sprintf("%d.%d", major, minor)
	if rc, ok := newestRC(releases, major, minor); ok {
		return Version{}, withKind(ErrNotFound, fmt.Errorf("kernel.org: series %s has no release yet, only release candidates — use -version=%s", series, rc))
	}
	return Version{}, withKind(ErrNotFound, fmt.Errorf("kernel.org: no release of series %s found (not in releases.json, no tarball at %s) — check the version; listed series are %s",
		series, c.TarballURL(Version{Major: major, Minor: minor}), listedSeries(releases)))
}

// newestListed returns the highest release (not release candidate) of a
// series in releases.json.
func newestListed(releases []Release, major, minor int) (Version, bool) {
	var best Version
	found := false
	for _, r := range releases {
		v := r.Version
		if v.Major != major || v.Minor != minor || v.IsRC() {
			continue
		}
		if !found || v.Compare(best) > 0 {
			best, found = v, true
		}
	}
	return best, found
}

func newestRC(releases []Release, major, minor int) (Version, bool) {
	var best Version
	found := false
	for _, r := range releases {
		v := r.Version
		if v.Major == major && v.Minor == minor && v.IsRC() && (!found || v.Compare(best) > 0) {
			best, found = v, true
		}
	}
	return best, found
}

func listedSeries(releases []Release) string {
	seen := map[string]bool{}
	var names []string
	for _, r := range releases {
		s := r.Version.Series()
		if !seen[s] {
			seen[s] = true
			names = append(names, s)
		}
	}
	return strings.Join(names, ", ")
}

// Probing walks patch numbers upward in batches of probeBatch parallel HEAD
// requests. Patch releases are numbered without gaps, so the first missing
// number ends the series. maxProbePatch stops the walk on a mirror that
// returns 200 for every path. The longest series so far, 4.14, ended at
// 4.14.336.
const (
	probeBatch    = 16
	maxProbePatch = 1024
)

// probeSeries finds the newest release of a series that releases.json no
// longer lists. found is false when not even the series' first tarball
// exists.
func (c *Client) probeSeries(ctx context.Context, major, minor int) (v Version, found bool, err error) {
	slog.Debug("kernel.org: probing tarballs of a series missing from releases.json", "series", fmt.Sprintf("%d.%d", major, minor))

	newest := 0
	for start := 1; start <= maxProbePatch; start += probeBatch {
		present, err := c.probeBatch(ctx, major, minor, start)
		if err != nil {
			return Version{}, false, err
		}
		missing := -1
		for i, ok := range present {
			if !ok {
				missing = i
				break
			}
		}
		if missing < 0 {
			newest = start + len(present) - 1
			continue
		}
		newest = start + missing - 1
		if newest > 0 {
			return Version{Major: major, Minor: minor, Patch: newest}, true, nil
		}

		base := Version{Major: major, Minor: minor}
		ok, err := c.exists(ctx, c.TarballURL(base))
		if err != nil {
			return Version{}, false, err
		}
		return base, ok, nil
	}
	return Version{}, false, fmt.Errorf("kernel.org: probing series %d.%d found tarballs for every patch up to %d, which no real series has — %s points at a mirror that returns 200 for every path, so set it to a real mirror",
		major, minor, newest, BaseURLEnv)
}

// probeBatch sends HEAD requests for patches start .. start+probeBatch-1
// at once and reports which exist.
func (c *Client) probeBatch(ctx context.Context, major, minor, start int) ([]bool, error) {
	present := make([]bool, probeBatch)
	errs := make([]error, probeBatch)
	var wg sync.WaitGroup
	for i := range probeBatch {
		wg.Go(func() {
			url := c.TarballURL(Version{Major: major, Minor: minor, Patch: start + i})
			present[i], errs[i] = c.exists(ctx, url)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return present, nil
}

// maxRangeMinor bounds the walk through one major; no major has reached 40
// series.
const maxRangeMinor = 99

// ExpandRange turns "from..to" into the versions to build: one per series
// from from's series to to's series, each the newest release of that
// series that lies within from..to. A two-part bound covers its whole
// series, so "6.10..6.12" gives the newest 6.10, 6.11 and 6.12 releases,
// and "6.6.10..6.12.1" ends with 6.12.1.
//
// Series listed in releases.json are resolved from it, and the others (end
// of life) by probing. Inside the last major every series must exist. In an
// earlier major the walk moves on to the next major at the first series
// with no release, because majors end at varying minors (3.19, 4.20, 5.19).
// Release candidates are not accepted as bounds. A series of the last major
// with no release is reported in the error, next to the releases that were
// found, so a caller can build those and report every failure at the end.
func (c *Client) ExpandRange(ctx context.Context, from, to string) ([]string, error) {
	lo, _, err := parseVersion(from)
	if err != nil {
		return nil, err
	}
	hi, hiSeries, err := parseVersion(to)
	if err != nil {
		return nil, err
	}
	if lo.IsRC() || hi.IsRC() {
		return nil, fmt.Errorf("kernel.org: range %s..%s has a release-candidate bound — ranges take releases only; build the release candidate on its own with -version", from, to)
	}
	upper := hi
	if hiSeries {
		upper.Patch = maxProbePatch
	}
	if lo.Compare(upper) > 0 {
		return nil, fmt.Errorf("kernel.org: range %s..%s runs backwards — write the older version first", from, to)
	}
	releases, err := c.Releases(ctx)
	if err != nil {
		return nil, err
	}

	var out []string
	var missing []error
	for major := lo.Major; major <= hi.Major; major++ {
		minor := 0
		if major == lo.Major {
			minor = lo.Minor
		}
		for ; major < hi.Major || minor <= hi.Minor; minor++ {
			if minor > maxRangeMinor {
				return nil, fmt.Errorf("kernel.org: range %s..%s: major %d seems to have more than %d series — %s points at a mirror that returns 200 for every path, so set it to a real mirror", from, to, major, maxRangeMinor, BaseURLEnv)
			}
			newest, found, err := c.seriesNewest(ctx, releases, major, minor)
			if err != nil {
				return nil, err
			}
			if !found {
				if major < hi.Major {
					break
				}
				missing = append(missing, withKind(ErrNotFound, fmt.Errorf("kernel.org: range %s..%s: no release of series %d.%d found — check the bounds", from, to, major, minor)))
				continue
			}

			if newest.Compare(upper) > 0 {
				newest = hi
			}
			if newest.Compare(lo) < 0 {
				return nil, withKind(ErrNotFound, fmt.Errorf("kernel.org: range %s..%s: the newest %d.%d release is %s, older than the lower bound — check the bounds", from, to, major, minor, newest))
			}
			out = append(out, newest.String())
		}
	}
	return out, errors.Join(missing...)
}

func (c *Client) seriesNewest(ctx context.Context, releases []Release, major, minor int) (Version, bool, error) {
	if v, ok := newestListed(releases, major, minor); ok {
		return v, true, nil
	}
	return c.probeSeries(ctx, major, minor)
}

// IsEOL reports whether the series of version (any string starting with
// MAJOR.MINOR, such as "6.6.30" or "6.13.0-rc2") has reached end of life
// according to releases: no row lists it, or all its rows carry the EOL
// flag. A series newer than every listed one is not EOL, nor is a version
// that does not start with MAJOR.MINOR.
func IsEOL(releases []Release, version string) bool {
	major, minor, ok := seriesPrefix(version)
	if !ok || len(releases) == 0 {
		return false
	}
	probe := Version{Major: major, Minor: minor}

	listed, newer := false, false
	for _, r := range releases {
		rv := Version{Major: r.Version.Major, Minor: r.Version.Minor}
		switch rv.Compare(probe) {
		case 0:
			if !r.EOL {
				return false
			}
			listed = true
		case 1:
			newer = true
		}
	}
	return listed || newer
}

// IsEOL fetches releases.json (once per Client) and applies the package
// function IsEOL to version.
func (c *Client) IsEOL(ctx context.Context, version string) (bool, error) {
	releases, err := c.Releases(ctx)
	if err != nil {
		return false, err
	}
	return IsEOL(releases, version), nil
}
