{{/* The release's full name, used for every object. */}}
{{- define "nitro-cosigner.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "nitro-cosigner.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select the pod. */}}
{{- define "nitro-cosigner.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* An image pinned by digest: repository@sha256:... ; anything else fails the install. */}}
{{- define "nitro-cosigner.image" -}}
{{- if not .repository -}}
{{- fail "an image repository is required" -}}
{{- end -}}
{{- if not (regexMatch "^sha256:[0-9a-f]{64}$" (default "" .digest)) -}}
{{- fail (printf "the image %s must be pinned by digest (sha256:<64 hex>)" .repository) -}}
{{- end -}}
{{- printf "%s@%s" .repository .digest -}}
{{- end -}}

{{/* The service account's name. */}}
{{- define "nitro-cosigner.serviceAccountName" -}}
{{- default (include "nitro-cosigner.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}
