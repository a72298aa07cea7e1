{{/* Chart name, or nameOverride. */}}
{{- define "impulse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name of the release's objects: fullnameOverride, else RELEASE-NAME
(just RELEASE when it already contains the chart name). At most 50
characters, so the suffixes added to it ("-headless", "-admin-token") stay
within the 63 allowed.
*/}}
{{- define "impulse.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "impulse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object of the release carries. */}}
{{- define "impulse.labels" -}}
helm.sh/chart: {{ include "impulse.chart" . }}
{{ include "impulse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select the server's pods. */}}
{{- define "impulse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "impulse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Service account the pods run as. */}}
{{- define "impulse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "impulse.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image reference; the tag defaults to the chart's appVersion. */}}
{{- define "impulse.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
Name of the Secret holding the admin token, or "" when the chart does not
manage the token (the server then keeps the one it created).
*/}}
{{- define "impulse.adminTokenSecret" -}}
{{- if .Values.adminToken.existingSecret -}}
{{- .Values.adminToken.existingSecret -}}
{{- else if .Values.adminToken.create -}}
{{- printf "%s-admin-token" (include "impulse.fullname" .) -}}
{{- end -}}
{{- end -}}
