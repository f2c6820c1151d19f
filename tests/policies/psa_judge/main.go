// psa-judge: the official Pod Security Admission checks as a referee for the policy pack.
//
// Reads a JSON array of {"name": ..., "pod": <Pod>} on stdin and prints, for each pod,
// the restricted-profile (latest version) verdict with the id of every failing check.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

type input struct {
	Name string     `json:"name"`
	Pod  corev1.Pod `json:"pod"`
}

type finding struct {
	Check  string `json:"check"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

type verdict struct {
	Name      string    `json:"name"`
	Allowed   bool      `json:"allowed"`
	Forbidden []finding `json:"forbidden"`
}

// applicable picks, per check of the baseline and restricted levels, the newest version
// in force at `latest`, dropping baseline checks a restricted one overrides (as the
// admission plugin's registry does).
func applicable(latest api.Version) map[string]policy.CheckPodFn {
	chosen := map[string]policy.CheckPodFn{}
	overridden := map[string]bool{}
	for _, check := range policy.DefaultChecks() {
		var best *policy.VersionedCheck
		for i := range check.Versions {
			v := &check.Versions[i]
			if v.MinimumVersion != (api.Version{}) && !latest.Older(v.MinimumVersion) {
				best = v
			}
		}
		if best == nil {
			continue
		}
		chosen[string(check.ID)] = best.CheckPod
		for _, id := range best.OverrideCheckIDs {
			overridden[string(id)] = true
		}
	}
	for id := range overridden {
		delete(chosen, id)
	}
	return chosen
}

func main() {
	var pods []input
	if err := json.NewDecoder(os.Stdin).Decode(&pods); err != nil {
		fmt.Fprintf(os.Stderr, "psa-judge: stdin is not a JSON array of {name, pod}: %v\n", err)
		os.Exit(2)
	}
	checks := applicable(api.LatestVersion())
	ids := make([]string, 0, len(checks))
	for id := range checks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]verdict, 0, len(pods))
	for _, p := range pods {
		v := verdict{Name: p.Name, Allowed: true, Forbidden: []finding{}}
		for _, id := range ids {
			result := checks[id](&p.Pod.ObjectMeta, &p.Pod.Spec)
			if !result.Allowed {
				v.Allowed = false
				v.Forbidden = append(v.Forbidden, finding{id, result.ForbiddenReason, result.ForbiddenDetail})
			}
		}
		out = append(out, v)
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "psa-judge: %v\n", err)
		os.Exit(1)
	}
}
