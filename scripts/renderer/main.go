// Command agent-perimeter-render renders many Helm releases in one process, exactly as
// `helm template <release> <chart> --namespace <ns> -f values.json` renders each of them.
//
// The offline commands (render, check, audit) expand every Chart resource of an
// environment; one helm process per release cost ~0.2 s each. This program runs the
// same code path as `helm template` (action.Install in client-only dry-run mode,
// values read the way `-f` reads them, schema validation included) for a whole batch.
//
// stdin: JSON objects {"release", "chart", "namespace", "values", "set"}, one after another
// (or all of them in one JSON list). stdout: at the end of stdin, a JSON list in request order
// of {"manifest", "objects"} (helm template's stdout, and its documents as JSON) or {"error"}.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/strvals"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

type request struct {
	Release   string          `json:"release"`
	Chart     string          `json:"chart"`
	Namespace string          `json:"namespace"`
	Values    json.RawMessage `json:"values"`
	Set       []string        `json:"set"`
}

type result struct {
	Manifest *string `json:"manifest,omitempty"`
	// The manifest's documents as JSON, read the way the Kubernetes libraries read YAML (and
	// so the pulumi-kubernetes provider, which deploys them): the caller need not parse YAML.
	Objects []json.RawMessage `json:"objects,omitempty"`
	Error   string            `json:"error,omitempty"`
}

// objects splits a rendered manifest into its documents, each as JSON; empty ones are left out.
func objects(manifest string) ([]json.RawMessage, error) {
	reader := k8syaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	var found []json.RawMessage
	for {
		document, err := reader.Read()
		if err == io.EOF {
			return found, nil
		}
		if err != nil {
			return nil, err
		}
		converted, err := yaml.YAMLToJSON(document)
		if err != nil {
			return nil, err
		}
		if trimmed := bytes.TrimSpace(converted); len(trimmed) > 0 && !bytes.Equal(trimmed, []byte("null")) {
			found = append(found, converted)
		}
	}
}

// charts loads each chart directory once; a chart without dependencies is not changed by
// rendering, so every release of it shares one copy.
type charts struct {
	mu     sync.Mutex
	loaded map[string]*chart.Chart
}

func (c *charts) get(path string) (*chart.Chart, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.loaded[path]; ok {
		return ch, nil
	}
	ch, err := loader.Load(path)
	if err != nil {
		return nil, err
	}
	switch ch.Metadata.Type { // helm template's checkIfInstallable
	case "", "application":
	default:
		return nil, fmt.Errorf("%s charts are not installable", ch.Metadata.Type)
	}
	if len(ch.Metadata.Dependencies) == 0 {
		c.loaded[path] = ch
	}
	return ch, nil
}

// values parses the values the way `helm template -f` parses a values file, then applies
// `--set` pairs the way the CLI does.
func values(req request) (map[string]interface{}, error) {
	vals := map[string]interface{}{}
	if len(req.Values) > 0 {
		if err := yaml.Unmarshal(req.Values, &vals); err != nil {
			return nil, fmt.Errorf("failed to parse values of %s: %w", req.Release, err)
		}
		if vals == nil {
			vals = map[string]interface{}{}
		}
	}
	for _, pair := range req.Set {
		if err := strvals.ParseInto(pair, vals); err != nil {
			return nil, fmt.Errorf("failed parsing --set data: %w", err)
		}
	}
	return vals, nil
}

// render is `helm template`'s RunE for one release: its output text, byte for byte.
func render(c *charts, req request) (string, error) {
	vals, err := values(req)
	if err != nil {
		return "", err
	}
	ch, err := c.get(req.Chart)
	if err != nil {
		return "", err
	}
	client := action.NewInstall(&action.Configuration{Log: func(string, ...interface{}) {}})
	client.DryRunOption = "true"
	client.DryRun = true
	client.ReleaseName = req.Release
	client.Replace = true
	client.ClientOnly = true
	client.APIVersions = chartutil.VersionSet([]string{})
	client.Namespace = req.Namespace
	rel, err := client.Run(ch, vals)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	fmt.Fprintln(&out, strings.TrimSpace(rel.Manifest))
	for _, hook := range rel.Hooks {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", hook.Path, hook.Manifest)
	}
	return out.String(), nil
}

// listed tells whether the input starts with a JSON list, without consuming it.
func listed(input *bufio.Reader) bool {
	for {
		b, err := input.Peek(1)
		if err != nil {
			return false
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = input.ReadByte()
		default:
			return b[0] == '['
		}
	}
}

func main() {
	// Requests are rendered as they arrive: the offline commands send each Chart resource the
	// moment the program registers it, so rendering overlaps the rest of the program.
	input := bufio.NewReader(os.Stdin)
	decoder := json.NewDecoder(input)
	c := &charts{loaded: map[string]*chart.Chart{}}
	type job struct {
		req request
		out *result
	}
	var (
		results []*result // only this goroutine appends; each worker fills the one it is given
		wg      sync.WaitGroup
	)
	jobs := make(chan job, 4096)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				manifest, err := render(c, j.req)
				if err == nil {
					j.out.Objects, err = objects(manifest)
				}
				if err != nil {
					j.out.Error = "Error: " + err.Error()
				} else {
					j.out.Manifest = &manifest
				}
			}
		}()
	}
	queue := func(req request) {
		out := &result{}
		results = append(results, out)
		jobs <- job{req, out}
	}
	if listed(input) {
		// One JSON list, as earlier revisions send it (`audit --diff <rev>` runs their code).
		var all []request
		if err := decoder.Decode(&all); err != nil {
			fmt.Fprintf(os.Stderr, "Error: requests are not a JSON list of releases: %v\n", err)
			os.Exit(2)
		}
		for _, req := range all {
			queue(req)
		}
	} else {
		for {
			var req request
			err := decoder.Decode(&req)
			if err == io.EOF {
				break
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "Error: requests are not a stream of JSON releases: %v\n", err)
				os.Exit(2)
			}
			queue(req)
		}
	}
	close(jobs)
	wg.Wait()
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintf(os.Stderr, "Error: writing results: %v\n", err)
		os.Exit(2)
	}
}
