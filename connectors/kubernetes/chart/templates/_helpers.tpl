{{/* The release's full name: the release name when it already names the chart. */}}
{{- define "agent.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object; `app` is what `kubectl get pods -l app=patchbay-kubectl-agent` selects. */}}
{{- define "agent.labels" -}}
app: {{ .Chart.Name }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "agent.selectorLabels" -}}
app: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "agent.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* patchbay.* wins over the guide's aurora.* names. */}}
{{- define "agent.backendUrl" -}}
{{- coalesce .Values.patchbay.backendUrl .Values.aurora.backendUrl | default "" -}}
{{- end -}}

{{- define "agent.wsEndpoint" -}}
{{- coalesce .Values.patchbay.wsEndpoint .Values.aurora.wsEndpoint | default "" -}}
{{- end -}}

{{- define "agent.agentToken" -}}
{{- coalesce .Values.patchbay.agentToken .Values.aurora.agentToken | default "" -}}
{{- end -}}

{{- define "agent.secretName" -}}
{{- default (printf "%s-config" (include "agent.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{/* Fails the install with the value to set when the agent could not connect. */}}
{{- define "agent.validate" -}}
{{- if and (not .Values.existingSecret) (not (include "agent.agentToken" .)) -}}
{{- fail "set patchbay.agentToken (or aurora.agentToken) to the token from Patchbay's Add Cluster, or existingSecret to a Secret holding it under PATCHBAY_AGENT_TOKEN" -}}
{{- end -}}
{{- if and (not (include "agent.wsEndpoint" .)) (not (include "agent.backendUrl" .)) -}}
{{- fail "set patchbay.wsEndpoint (or aurora.wsEndpoint), e.g. wss://patchbay.example.com/kubectl-agent, or patchbay.backendUrl" -}}
{{- end -}}
{{- end -}}
