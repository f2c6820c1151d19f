{{/*
Chart name. Deliberately not overridable (no nameOverride): the program's
NetworkPolicies select pods by app.kubernetes.io/name = chart name.
*/}}
{{- define "mcp-server.name" -}}
{{- .Chart.Name -}}
{{- end }}

{{/*
Fully qualified name: the release name when it already contains the chart
name (the program's releases do), else "<release>-<chart>"; 63 characters at most.
*/}}
{{- define "mcp-server.fullname" -}}
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
{{- define "mcp-server.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/*
The version label: the image tag when there is one (what actually runs),
else the chart's appVersion; always a valid label value.
*/}}
{{- define "mcp-server.version" -}}
{{- .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimAll "-_." -}}
{{- end }}

{{/*
Selector labels: exactly name + instance, the pair infra.naming.selector_labels
returns and the program's NetworkPolicies match. Never add to these: a
Deployment's selector is immutable.
*/}}
{{- define "mcp-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcp-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of every object: the standard set plus .Values.commonLabels (the schema
keeps commonLabels from overriding a standard key; the standard key wins anyway).
*/}}
{{- define "mcp-server.labels" -}}
{{- $labels := dict
  "helm.sh/chart" (include "mcp-server.chart" .)
  "app.kubernetes.io/name" (include "mcp-server.name" .)
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/version" (include "mcp-server.version" .)
  "app.kubernetes.io/component" "mcp-server"
  "app.kubernetes.io/part-of" "agent-perimeter"
  "app.kubernetes.io/managed-by" .Release.Service
-}}
{{- toYaml (merge $labels (deepCopy (.Values.commonLabels | default dict))) -}}
{{- end }}

{{/*
Pod template labels: every object label plus .Values.podLabels.
*/}}
{{- define "mcp-server.podLabels" -}}
{{- $labels := include "mcp-server.labels" . | fromYaml -}}
{{- toYaml (merge $labels (deepCopy (.Values.podLabels | default dict))) -}}
{{- end }}

{{/*
The Deployment waits for its ServiceAccount: an engine that honours the annotation (Pulumi's
Chart v4, kpt, Config Sync) creates it first, so no pod is refused "serviceaccount not found".
*/}}
{{- define "mcp-server.dependsOnServiceAccount" -}}
config.kubernetes.io/depends-on: /namespaces/{{ .Release.Namespace }}/ServiceAccount/{{ include "mcp-server.serviceAccountName" . }}
{{- end }}

{{/*
The chart's own ServiceAccount (always created, token never automounted).
*/}}
{{- define "mcp-server.serviceAccountName" -}}
{{- include "mcp-server.fullname" . -}}
{{- end }}

{{/*
An image reference "repository[:tag][@digest]" from an image value map.
*/}}
{{- define "mcp-server.image" -}}
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
{{- define "mcp-server.podSecurityContext" -}}
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
{{- define "mcp-server.containerSecurityContext" -}}
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
{{- define "mcp-server.scheduling" -}}
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
The container port's name: "https" when the server serves its own certificate.
*/}}
{{- define "mcp-server.portName" -}}
{{- if .Values.tls.secretName -}}https{{- else -}}http{{- end -}}
{{- end }}

{{/*
A backend's name as it appears in environment variable names: BACKEND_<this>_HOST.
*/}}
{{- define "mcp-server.backendEnv" -}}
{{- . | upper | replace "-" "_" -}}
{{- end }}
