{{/* Names and labels, as `helm create` lays them out. */}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-chart, capped at 63 characters (DNS label). */}}
{{- define "switchboard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "switchboard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "switchboard.labels" -}}
helm.sh/chart: {{ include "switchboard.chart" . }}
{{ include "switchboard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchboard
{{- end }}

{{/* Selector labels (immutable once deployed). */}}
{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "switchboard.operator.name" -}}
{{- printf "%s-operator" (include "switchboard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchboard.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "switchboard.operator.name" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "switchboard.router.name" -}}
{{- printf "%s-router" (include "switchboard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchboard.router.serviceAccountName" -}}
{{- if .Values.router.serviceAccount.create }}
{{- default (include "switchboard.router.name" .) .Values.router.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.router.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels the operator puts on every Ray pod (operators/switchboard_operator/builders.py: pod_labels). */}}
{{- define "switchboard.rayPodLabels" -}}
app.kubernetes.io/name: switchboard
app.kubernetes.io/component: ray
switchboard.dev/rayservice: {{ .Values.rayService.name }}
{{- end }}

{{/* Namespaces the operator serves: the release namespace unless watchNamespaces lists others or "*" (all). */}}
{{- define "switchboard.clusterwide" -}}
{{- if has "*" .Values.operator.watchNamespaces }}true{{- end }}
{{- end }}

{{- define "switchboard.watchNamespaces" -}}
{{- if .Values.operator.watchNamespaces }}{{ join "," .Values.operator.watchNamespaces }}{{ else }}{{ .Release.Namespace }}{{ end }}
{{- end }}

{{/* An image reference: repository@digest when a digest pins it, else repository:tag (default tag given). */}}
{{- define "switchboard.image" -}}
{{- $image := index . 0 }}{{ $tag := index . 1 }}
{{- if $image.digest }}{{ $image.repository }}@{{ $image.digest }}{{ else }}{{ $image.repository }}:{{ $image.tag | default $tag }}{{ end }}
{{- end }}

{{/* kopf peering object name (one per served namespace, or one cluster-wide). */}}
{{- define "switchboard.peeringName" -}}
{{- include "switchboard.operator.name" . }}
{{- end }}
