{{/*
Chart name. Deliberately not overridable (no nameOverride): the program's
NetworkPolicies select pods by app.kubernetes.io/name = chart name.
*/}}
{{- define "mcp-tunnel.name" -}}
{{- .Chart.Name -}}
{{- end }}

{{/*
Fully qualified name: the release name when it already contains the chart
name (the program's releases do), else "<release>-<chart>"; 63 characters at most.
*/}}
{{- define "mcp-tunnel.fullname" -}}
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
{{- define "mcp-tunnel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/*
The version label: the image tag when there is one (what actually runs),
else the chart's appVersion; always a valid label value.
*/}}
{{- define "mcp-tunnel.version" -}}
{{- .Values.proxy.image.tag | default .Chart.AppVersion | trunc 63 | trimAll "-_." -}}
{{- end }}

{{/*
Selector labels: exactly name + instance, the pair infra.naming.selector_labels
returns and the program's NetworkPolicies match. Never add to these: a
Deployment's selector is immutable.
*/}}
{{- define "mcp-tunnel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcp-tunnel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of every object: the standard set plus .Values.commonLabels (the schema
keeps commonLabels from overriding a standard key; the standard key wins anyway).
*/}}
{{- define "mcp-tunnel.labels" -}}
{{- $labels := dict
  "helm.sh/chart" (include "mcp-tunnel.chart" .)
  "app.kubernetes.io/name" (include "mcp-tunnel.name" .)
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/version" (include "mcp-tunnel.version" .)
  "app.kubernetes.io/component" "mcp-tunnel"
  "app.kubernetes.io/part-of" "agent-perimeter"
  "app.kubernetes.io/managed-by" .Release.Service
-}}
{{- toYaml (merge $labels (deepCopy (.Values.commonLabels | default dict))) -}}
{{- end }}

{{/*
Pod template labels: every object label plus .Values.podLabels.
*/}}
{{- define "mcp-tunnel.podLabels" -}}
{{- $labels := include "mcp-tunnel.labels" . | fromYaml -}}
{{- toYaml (merge $labels (deepCopy (.Values.podLabels | default dict))) -}}
{{- end }}

{{/*
The Deployment waits for its ServiceAccount: an engine that honours the annotation (Pulumi's
Chart v4, kpt, Config Sync) creates it first, so no pod is refused "serviceaccount not found".
*/}}
{{- define "mcp-tunnel.dependsOnServiceAccount" -}}
config.kubernetes.io/depends-on: /namespaces/{{ .Release.Namespace }}/ServiceAccount/{{ include "mcp-tunnel.serviceAccountName" . }}
{{- end }}

{{/*
The chart's own ServiceAccount (always created, token never automounted).
*/}}
{{- define "mcp-tunnel.serviceAccountName" -}}
{{- include "mcp-tunnel.fullname" . -}}
{{- end }}

{{/*
An image reference "repository[:tag][@digest]" from an image value map.
*/}}
{{- define "mcp-tunnel.image" -}}
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
{{- define "mcp-tunnel.podSecurityContext" -}}
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
{{- define "mcp-tunnel.containerSecurityContext" -}}
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
{{- define "mcp-tunnel.scheduling" -}}
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
Where the proxy reads its config and inner-TLS key pair (fixed by the proxy image).
*/}}
{{- define "mcp-tunnel.configDir" -}}
/etc/mcp-gateway
{{- end }}

{{- define "mcp-tunnel.tokenSecretName" -}}
{{- .Values.tunnel.tokenSecretName | default (printf "%s-token" (include "mcp-tunnel.fullname" .)) -}}
{{- end }}

{{- define "mcp-tunnel.tlsSecretName" -}}
{{- .Values.tunnel.tlsSecretName | default (printf "%s-tls" (include "mcp-tunnel.fullname" .)) -}}
{{- end }}

{{/*
Where the upstream CA ConfigMap is mounted into the proxy (a directory, not a subPath,
so a renewed CA reaches running pods).
*/}}
{{- define "mcp-tunnel.upstreamCaDir" -}}
/etc/mcp-proxy/upstream-ca
{{- end }}

{{/*
The proxy's upstream TLS settings: with upstream.tls.caConfigMap, that CA only (the
system CAs are never trusted alongside it); otherwise the system CAs as configured.
*/}}
{{- define "mcp-tunnel.upstreamTls" -}}
{{- if .Values.upstream.tls.caConfigMap -}}
{{- toYaml (dict "ca_file" (printf "%s/ca.crt" (include "mcp-tunnel.upstreamCaDir" .)) "include_system_cas" false) -}}
{{- else -}}
{{- toYaml (dict "include_system_cas" .Values.upstream.tls.includeSystemCas) -}}
{{- end -}}
{{- end }}

{{/*
The proxy's config.yaml. Built as a map and serialised with toYaml, so no
value can inject YAML. IP validation is always on.
*/}}
{{- define "mcp-tunnel.proxyConfig" -}}
{{- $dir := include "mcp-tunnel.configDir" . -}}
{{- $config := dict
  "listen_addr" (printf ":%d" (int .Values.proxy.listenPort))
  "log_level" .Values.proxy.logLevel
  "shutdown_timeout" .Values.proxy.shutdownTimeout
  "tunnel_domain" .Values.tunnel.domain
  "tls" (dict "cert_file" (printf "%s/tls/tls.crt" $dir) "key_file" (printf "%s/tls/tls.key" $dir))
  "routes" (.Values.routes | default dict)
  "upstream" (dict
    "allowed_ips" .Values.upstream.allowedIps
    "disable_ip_validation" false
    "tls" (include "mcp-tunnel.upstreamTls" . | fromYaml))
-}}
{{- toYaml $config -}}
{{- end }}

{{/*
Seconds in a Go-style duration such as 500ms, 30s, 5m, 1h (rounded up).
*/}}
{{- define "mcp-tunnel.seconds" -}}
{{- $n := regexFind "^[0-9]+" . | int -}}
{{- $unit := regexFind "[a-z]+$" . -}}
{{- if eq $unit "ms" -}}{{ div (add $n 999) 1000 }}
{{- else if eq $unit "s" -}}{{ $n }}
{{- else if eq $unit "m" -}}{{ mul $n 60 }}
{{- else if eq $unit "h" -}}{{ mul $n 3600 }}
{{- else -}}{{ fail (printf "%q is not a duration such as 30s" .) }}
{{- end -}}
{{- end }}

{{/*
Termination grace: long enough for both containers to drain (the proxy's
shutdown_timeout, cloudflared's default 30s grace period) plus slack.
*/}}
{{- define "mcp-tunnel.terminationGracePeriodSeconds" -}}
{{- $drain := max (include "mcp-tunnel.seconds" .Values.proxy.shutdownTimeout | int) 30 -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add $drain 15 -}}
{{- else if le (int .Values.terminationGracePeriodSeconds) $drain -}}
{{- fail (printf "terminationGracePeriodSeconds: %d must exceed the %ds the tunnel stack needs to drain (proxy.shutdownTimeout, cloudflared's 30s); leave it null to derive it" (int .Values.terminationGracePeriodSeconds) $drain) -}}
{{- else -}}
{{- .Values.terminationGracePeriodSeconds | int -}}
{{- end -}}
{{- end }}
