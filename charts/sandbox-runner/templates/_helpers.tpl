{{/*
Chart name. Deliberately not overridable (no nameOverride): the program's
NetworkPolicies select pods by app.kubernetes.io/name = chart name.
*/}}
{{- define "sandbox-runner.name" -}}
{{- .Chart.Name -}}
{{- end }}

{{/*
Fully qualified name: the release name when it already contains the chart
name (the program's releases do), else "<release>-<chart>"; 63 characters at most.
*/}}
{{- define "sandbox-runner.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end }}

{{/*
Chart name and version, the value of helm.sh/chart.
*/}}
{{- define "sandbox-runner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/*
The version label: the image tag when there is one (what actually runs),
else the chart's appVersion; always a valid label value.
*/}}
{{- define "sandbox-runner.version" -}}
{{- .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimAll "-_." -}}
{{- end }}

{{/*
Selector labels: exactly name + instance, the pair infra.naming.selector_labels
returns and the program's NetworkPolicies match. Never add to these: a
Deployment's selector is immutable.
*/}}
{{- define "sandbox-runner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sandbox-runner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of every object: the standard set plus .Values.commonLabels (the schema
keeps commonLabels from overriding a standard key; the standard key wins anyway).
*/}}
{{- define "sandbox-runner.labels" -}}
{{- $labels := dict
  "helm.sh/chart" (include "sandbox-runner.chart" .)
  "app.kubernetes.io/name" (include "sandbox-runner.name" .)
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/version" (include "sandbox-runner.version" .)
  "app.kubernetes.io/component" "sandbox-runner"
  "app.kubernetes.io/part-of" "agent-perimeter"
  "app.kubernetes.io/managed-by" .Release.Service
-}}
{{- toYaml (merge $labels (deepCopy (.Values.commonLabels | default dict))) -}}
{{- end }}

{{/*
Pod template labels: every object label plus .Values.podLabels.
*/}}
{{- define "sandbox-runner.podLabels" -}}
{{- $labels := include "sandbox-runner.labels" . | fromYaml -}}
{{- toYaml (merge $labels (deepCopy (.Values.podLabels | default dict))) -}}
{{- end }}

{{/*
The Deployment waits for its ServiceAccount: an engine that honours the annotation (Pulumi's
Chart v4, kpt, Config Sync) creates it first, so no pod is refused "serviceaccount not found".
*/}}
{{- define "sandbox-runner.dependsOnServiceAccount" -}}
config.kubernetes.io/depends-on: /namespaces/{{ .Release.Namespace }}/ServiceAccount/{{ include "sandbox-runner.serviceAccountName" . }}
{{- end }}

{{/*
The chart's own ServiceAccount (always created, token never automounted).
*/}}
{{- define "sandbox-runner.serviceAccountName" -}}
{{- include "sandbox-runner.fullname" . -}}
{{- end }}

{{/*
An image reference "repository[:tag][@digest]" from an image value map.
*/}}
{{- define "sandbox-runner.image" -}}
{{- if not (or .tag .digest) -}}
{{- fail (printf "image %s: set a tag or a digest" .repository) -}}
{{- end -}}
{{- .repository -}}
{{- with .tag -}}:{{ . }}{{- end -}}
{{- with .digest -}}@{{ . }}{{- end -}}
{{- end }}

{{/*
Pod security context: Pod Security "restricted" (non-root, seccomp
RuntimeDefault); only the numeric ids are values.
*/}}
{{- define "sandbox-runner.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurityContext.runAsUser }}
runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
fsGroup: {{ .Values.podSecurityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Container security context: nothing to escalate to, nothing to write but the
mounted volumes. Not a value on purpose.
*/}}
{{- define "sandbox-runner.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Optional scheduling pass-through (nodeSelector, tolerations, affinity,
topologySpreadConstraints, imagePullSecrets).
*/}}
{{- define "sandbox-runner.scheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Where the environment key Secret is mounted; the worker reads "<this>/key".
*/}}
{{- define "sandbox-runner.keyMountPath" -}}
/var/run/secrets/agent-perimeter/environment-key
{{- end }}

{{/*
The tool host's Unix socket, in an emptyDir both containers mount.
*/}}
{{- define "sandbox-runner.toolSocketDir" -}}
/run/agent-perimeter/tools
{{- end }}

{{- define "sandbox-runner.toolSocket" -}}
{{ include "sandbox-runner.toolSocketDir" . }}/tools.sock
{{- end }}
