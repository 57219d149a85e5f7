{{/* Names are <release>-apogee-<component> unless the release already says apogee. */}}
{{- define "apogee.fullname" -}}
{{- if contains "apogee" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-apogee" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "apogee.labels" -}}
app.kubernetes.io/name: apogee
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "apogee.selector" -}}
app.kubernetes.io/name: apogee
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "apogee.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Headless Service of the NameServers: gives every replica a stable DNS name. */}}
{{- define "apogee.nameserver.headless" -}}
{{ include "apogee.fullname" . }}-nameserver-headless
{{- end -}}

{{/*
Every NameServer's own address, ';'-separated: brokers register with each one
(NameServers never talk to each other), so a single ClusterIP, which sends
each connection to one replica only, would leave the others without routes.
*/}}
{{- define "apogee.nameserver.addresses" -}}
{{- $full := include "apogee.fullname" . -}}
{{- $svc := include "apogee.nameserver.headless" . -}}
{{- $list := list -}}
{{- range $i := until (int .Values.nameserver.replicas) -}}
{{- $list = append $list (printf "%s-nameserver-%d.%s.%s.svc.%s:%d" $full $i $svc $.Release.Namespace $.Values.clusterDomain (int $.Values.nameserver.port)) -}}
{{- end -}}
{{- join ";" $list -}}
{{- end -}}

{{/* Broker group names: broker-a, broker-b, ... */}}
{{- define "apogee.broker.groupNames" -}}
{{- $letters := list "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" -}}
{{- $n := int .Values.broker.groups -}}
{{- if or (lt $n 1) (gt $n 26) -}}
{{- fail (printf "broker.groups is %d (allowed: 1..26)" $n) -}}
{{- end -}}
{{- $names := list -}}
{{- range $i := until $n -}}
{{- $names = append $names (printf "broker-%s" (index $letters $i)) -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{/* The --controller flag's value, or empty for static roles. */}}
{{- define "apogee.controller" -}}
{{- if .Values.controller.enabled -}}
{{- if .Values.controller.etcdEndpoints -}}
etcd:{{ .Values.controller.etcdEndpoints }}
{{- else if .Values.controller.etcd.deploy -}}
etcd:{{ include "apogee.fullname" . }}-etcd-0.{{ include "apogee.fullname" . }}-etcd.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}:2379
{{- else -}}
{{- fail "controller.enabled needs controller.etcdEndpoints or controller.etcd.deploy=true" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Pod anti-affinity over nodes: (list $ctx matchLabels) keeps those pods apart. */}}
{{- define "apogee.antiAffinity" -}}
{{- $ctx := index . 0 -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (index . 1)) -}}
{{- if eq $ctx.Values.antiAffinity "hard" }}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      {{- list $term | toYaml | nindent 6 }}
{{- else if eq $ctx.Values.antiAffinity "soft" }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          {{- $term | toYaml | nindent 10 }}
{{- else if ne $ctx.Values.antiAffinity "none" }}
{{- fail (printf "antiAffinity is %q (allowed: soft, hard, none)" $ctx.Values.antiAffinity) }}
{{- end }}
{{- end -}}

{{/* gRPC health probes (grpc.health.v1) on a TCP port. */}}
{{- define "apogee.grpcProbes" -}}
startupProbe:
  grpc: {port: {{ . }}}
  periodSeconds: 2
  failureThreshold: 60
readinessProbe:
  grpc: {port: {{ . }}}
  periodSeconds: 5
  failureThreshold: 2
livenessProbe:
  grpc: {port: {{ . }}}
  periodSeconds: 10
  failureThreshold: 3
{{- end -}}

{{/* Health probes of a container: (list $ctx port). gRPC probes in
plaintext; with tls.enabled exec probes with apogee-probe, since the
kubelet's gRPC probes cannot speak TLS. */}}
{{- define "apogee.probes" -}}
{{- $ctx := index . 0 -}}
{{- $port := index . 1 -}}
{{- if $ctx.Values.tls.enabled -}}
{{- $exec := dict "command" (list "/usr/local/bin/apogee-probe" (printf "--addr=127.0.0.1:%v" $port) "--tls_skip_verify" "--tls_cert=/etc/apogee-tls/tls.crt" "--tls_key=/etc/apogee-tls/tls.key" "--timeout=3s") -}}
startupProbe:
  exec: {{ $exec | toJson }}
  timeoutSeconds: 5
  periodSeconds: 2
  failureThreshold: 60
readinessProbe:
  exec: {{ $exec | toJson }}
  timeoutSeconds: 5
  periodSeconds: 5
  failureThreshold: 2
livenessProbe:
  exec: {{ $exec | toJson }}
  timeoutSeconds: 5
  periodSeconds: 10
  failureThreshold: 3
{{- else -}}
{{- include "apogee.grpcProbes" $port -}}
{{- end -}}
{{- end -}}

{{/* Checks tls.*, auth.* and controller.etcdTls.*. */}}
{{- define "apogee.validateSecurity" -}}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) -}}
{{- fail "tls.enabled needs tls.secretName (a Secret with tls.crt, tls.key and ca.crt)" -}}
{{- end -}}
{{- if not (has .Values.tls.clientAuth (list "none" "request" "require")) -}}
{{- fail (printf "tls.clientAuth is %q (allowed: none, request, require)" .Values.tls.clientAuth) -}}
{{- end -}}
{{- if and .Values.auth.enabled (not .Values.auth.adminSecretName) -}}
{{- fail "auth.enabled needs auth.adminSecretName (a Secret with keys username and secret)" -}}
{{- end -}}
{{- if and .Values.controller.etcdTls.enabled (not .Values.controller.etcdTls.secretName) -}}
{{- fail "controller.etcdTls.enabled needs controller.etcdTls.secretName (a Secret with ca.crt, tls.crt, tls.key)" -}}
{{- end -}}
{{- end -}}

{{/* The --tls_* config lines of a server (with tls.enabled). */}}
{{- define "apogee.tlsConfig" -}}
tls_cert = /etc/apogee-tls/tls.crt
tls_key = /etc/apogee-tls/tls.key
tls_ca = /etc/apogee-tls/ca.crt
tls_client_auth = {{ .Values.tls.clientAuth }}
tls_reload_interval = {{ .Values.tls.reloadInterval }}
{{- end -}}

{{/* Env of the bootstrap admin from auth.adminSecretName (with auth.enabled). */}}
{{- define "apogee.authEnv" -}}
- name: APOGEE_ADMIN_USER
  valueFrom: {secretKeyRef: {name: {{ .Values.auth.adminSecretName }}, key: username}}
- name: APOGEE_ADMIN_SECRET
  valueFrom: {secretKeyRef: {name: {{ .Values.auth.adminSecretName }}, key: secret}}
{{- end -}}

{{- define "apogee.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .Values.securityContext.runAsUser }}
  runAsGroup: {{ .Values.securityContext.runAsGroup }}
  fsGroup: {{ .Values.securityContext.fsGroup }}
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
{{- end -}}

{{- define "apogee.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
{{- end -}}
