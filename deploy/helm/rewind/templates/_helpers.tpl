{{/* The release's name for every object, at most 63 characters. */}}
{{- define "rewind.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rewind.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rewind.labels" -}}
{{ include "rewind.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "rewind.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "rewind.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The server's config file: .Values.config, with api.token_file set when the token comes from a Secret. */}}
{{- define "rewind.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- if .Values.apiToken.secretName -}}
{{- $api := $config.api | default dict -}}
{{- $_ := set $api "token_file" "/etc/rewind/secrets/api-token" -}}
{{- $_ := set $config "api" $api -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
