package api

import (
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// summary renders errors as sorted "path: Type" lines, the stable part of
// a validation error to compare in tables.
func summary(errs field.ErrorList) string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field+": "+string(e.Type))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func loadDefaulted(t *testing.T, src string) runtime.Object {
	t.Helper()
	obj := decodeOne(t, src)
	Default(obj)
	return obj
}

const podHead = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"

const deployHead = `apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      containers: [{name: c, image: nginx}]
`

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "path: Type" lines; empty for a valid object
		msg  string   // a substring of the errors' text, when it matters
	}{
		// Names and metadata.
		{name: "valid pod", src: podHead + "  containers: [{name: c, image: busybox}]\n"},
		{name: "pod name with capitals", src: "apiVersion: v1\nkind: Pod\nmetadata: {name: Web}\nspec:\n  containers: [{name: c, image: b}]\n",
			want: []string{"metadata.name: FieldValueInvalid"}, msg: "RFC 1123 subdomain"},
		{name: "pod name with dots is fine", src: "apiVersion: v1\nkind: Pod\nmetadata: {name: web.v1}\nspec:\n  containers: [{name: c, image: b}]\n"},
		{name: "service name with dots is not", src: "apiVersion: v1\nkind: Service\nmetadata: {name: web.v1}\nspec:\n  ports: [{port: 80}]\n",
			want: []string{"metadata.name: FieldValueInvalid"}, msg: "DNS-1035 label"},
		{name: "missing name", src: "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
			want: []string{"metadata.name: FieldValueRequired"}},
		{name: "bad label key", src: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {'bad key': x}}\n",
			want: []string{"metadata.labels: FieldValueInvalid"}},
		{name: "namespace name is a label", src: "apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n",
			want: []string{"metadata.name: FieldValueInvalid"}},
		{name: "rbac names are path segments", src: "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: 'system:admin'}\n"},
		{name: "cronjob name too long", src: "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: " + strings.Repeat("a", 53) + "}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers: [{name: c, image: b}]\n",
			want: []string{"metadata.name: FieldValueInvalid"}, msg: "no more than 52 characters"},

		// Pods.
		{name: "no containers", src: podHead + "  containers: []\n", want: []string{"spec.containers: FieldValueRequired"}},
		{name: "duplicate container names across init", src: podHead + "  initContainers: [{name: c, image: b}]\n  containers: [{name: c, image: b}]\n",
			want: []string{"spec.containers[0].name: FieldValueDuplicate"}},
		{name: "image required", src: podHead + "  containers: [{name: c}]\n", want: []string{"spec.containers[0].image: FieldValueRequired"}},
		{name: "ports", src: podHead + "  containers:\n  - name: c\n    image: b\n    ports: [{containerPort: 0}, {containerPort: 70000}, {containerPort: 80, hostPort: -1}, {containerPort: 81, protocol: ICMP}, {containerPort: 82, name: Not_IANA}]\n",
			want: []string{
				"spec.containers[0].ports[0].containerPort: FieldValueRequired",
				"spec.containers[0].ports[1].containerPort: FieldValueInvalid",
				"spec.containers[0].ports[2].hostPort: FieldValueInvalid",
				"spec.containers[0].ports[3].protocol: FieldValueNotSupported",
				"spec.containers[0].ports[4].name: FieldValueInvalid",
			}},
		{name: "host port conflict", src: podHead + "  containers:\n  - {name: a, image: b, ports: [{containerPort: 80, hostPort: 8080}]}\n  - {name: c, image: b, ports: [{containerPort: 81, hostPort: 8080}, {containerPort: 82, hostPort: 8080, protocol: UDP}]}\n",
			want: []string{"spec.containers[1].ports[0].hostPort: FieldValueDuplicate"}},
		{name: "restart policy", src: podHead + "  restartPolicy: Sometimes\n  containers: [{name: c, image: b}]\n",
			want: []string{"spec.restartPolicy: FieldValueNotSupported"}, msg: `supported values: "Always", "OnFailure", "Never"`},
		{name: "dns none needs config", src: podHead + "  dnsPolicy: None\n  containers: [{name: c, image: b}]\n",
			want: []string{"spec.dnsConfig: FieldValueRequired"}},
		{name: "requests above limits", src: podHead + "  containers:\n  - name: c\n    image: b\n    resources: {requests: {cpu: '2'}, limits: {cpu: '1'}}\n",
			want: []string{"spec.containers[0].resources.requests[cpu]: FieldValueInvalid"}, msg: "must be less than or equal to cpu limit of 1"},
		{name: "negative quantity", src: podHead + "  containers:\n  - name: c\n    image: b\n    resources: {limits: {memory: -1Gi}}\n",
			want: []string{"spec.containers[0].resources.limits[memory]: FieldValueInvalid", "spec.containers[0].resources.requests[memory]: FieldValueInvalid"}},
		{name: "unknown resource name", src: podHead + "  containers:\n  - name: c\n    image: b\n    resources: {limits: {gpu: '1'}}\n",
			want: []string{"spec.containers[0].resources.limits[gpu]: FieldValueInvalid", "spec.containers[0].resources.requests[gpu]: FieldValueInvalid"}},
		{name: "mount of a missing volume", src: podHead + "  containers:\n  - name: c\n    image: b\n    volumeMounts: [{name: data, mountPath: /d}, {name: cfg, mountPath: /d}]\n  volumes: [{name: cfg, configMap: {name: c}}]\n",
			want: []string{"spec.containers[0].volumeMounts[0].name: FieldValueNotFound", "spec.containers[0].volumeMounts[1].mountPath: FieldValueInvalid"}},
		{name: "volumes", src: podHead + "  containers: [{name: c, image: b}]\n  volumes:\n  - {name: a, hostPath: {path: /x}, emptyDir: {}}\n  - {name: a, emptyDir: {}}\n  - {name: c, hostPath: {path: ''}}\n  - {name: d, secret: {}}\n",
			want: []string{"spec.volumes[0].emptyDir: FieldValueForbidden", "spec.volumes[1].name: FieldValueDuplicate",
				"spec.volumes[2].hostPath.path: FieldValueRequired", "spec.volumes[3].secret.secretName: FieldValueRequired"}},
		{name: "probes", src: podHead + "  containers:\n  - name: c\n    image: b\n    livenessProbe: {successThreshold: 2, tcpSocket: {port: 80}}\n    readinessProbe: {initialDelaySeconds: -1, exec: {command: [x]}, tcpSocket: {port: http}}\n    startupProbe: {periodSeconds: 5}\n",
			want: []string{"spec.containers[0].livenessProbe.successThreshold: FieldValueInvalid",
				"spec.containers[0].readinessProbe: FieldValueForbidden", "spec.containers[0].readinessProbe.initialDelaySeconds: FieldValueInvalid",
				"spec.containers[0].startupProbe: FieldValueRequired"}},
		{name: "probe on plain init container", src: podHead + "  initContainers: [{name: i, image: b, readinessProbe: {exec: {command: [x]}}}]\n  containers: [{name: c, image: b}]\n",
			want: []string{"spec.initContainers[0].readinessProbe: FieldValueForbidden"}},
		{name: "sidecar init container may have probes", src: podHead + "  initContainers: [{name: i, image: b, restartPolicy: Always, readinessProbe: {exec: {command: [x]}}}]\n  containers: [{name: c, image: b}]\n"},
		{name: "env", src: podHead + "  containers:\n  - name: c\n    image: b\n    env: [{name: ''}, {name: 'A=B'}, {name: X, value: v, valueFrom: {fieldRef: {fieldPath: metadata.name}}}, {name: VAR, valueFrom: {}}]\n    envFrom: [{}, {prefix: P_, configMapRef: {name: cm}}]\n",
			want: []string{"spec.containers[0].env[0].name: FieldValueRequired", "spec.containers[0].env[1].name: FieldValueInvalid",
				"spec.containers[0].env[2].valueFrom: FieldValueInvalid", "spec.containers[0].env[3].valueFrom: FieldValueInvalid",
				"spec.containers[0].envFrom[0]: FieldValueInvalid"}},
		{name: "tolerations", src: podHead + "  containers: [{name: c, image: b}]\n  tolerations: [{operator: Exists}, {key: k, operator: Exists, value: v}, {key: k, value: v, effect: NoSchedule, tolerationSeconds: 5}]\n",
			want: []string{"spec.tolerations[1].operator: FieldValueInvalid", "spec.tolerations[2].effect: FieldValueInvalid"}},

		{name: "affinity", src: podHead + `  containers: [{name: c, image: b}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: zone, operator: In}
          - {key: gpu, operator: Exists, values: ["1"]}
          - {key: cores, operator: Gt, values: [many]}
          - {key: disk, operator: Near, values: [ssd]}
          matchFields:
          - {key: metadata.labels, operator: In, values: [n1]}
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 0
        preference: {matchExpressions: [{key: zone, operator: In, values: [a]}]}
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector: {matchLabels: {app: web}}
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 50
        podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchExpressions: [{key: app, operator: In}]}}
  topologySpreadConstraints:
  - {maxSkew: 0, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}
  - {maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule, minDomains: 2}
  - {maxSkew: 1, topologyKey: '', whenUnsatisfiable: Sometimes, minDomains: 3}
`,
			want: []string{
				"spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: FieldValueInvalid",
				"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values: FieldValueRequired",
				"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values: FieldValueForbidden",
				"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[2].values[0]: FieldValueInvalid",
				"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[3].operator: FieldValueNotSupported",
				"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key: FieldValueNotSupported",
				"spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.labelSelector.matchExpressions[0].values: FieldValueRequired",
				"spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: FieldValueRequired",
				"spec.topologySpreadConstraints[0].maxSkew: FieldValueInvalid",
				"spec.topologySpreadConstraints[1]: FieldValueDuplicate",
				"spec.topologySpreadConstraints[2].minDomains: FieldValueInvalid",
				"spec.topologySpreadConstraints[2].topologyKey: FieldValueRequired",
				"spec.topologySpreadConstraints[2].whenUnsatisfiable: FieldValueNotSupported",
			}},

		// Services.
		{name: "valid nodeport service", src: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 30000}]\n"},
		{name: "nodePort out of range", src: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 32768}]\n",
			want: []string{"spec.ports[0].nodePort: FieldValueInvalid"}, msg: "The range of valid ports is 30000-32767"},
		{name: "nodePort on ClusterIP", src: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 80, nodePort: 30001}]\n",
			want: []string{"spec.ports[0].nodePort: FieldValueForbidden"}},
		{name: "ports required", src: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {}\n", want: []string{"spec.ports: FieldValueRequired"}},
		{name: "headless needs no ports", src: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: None}\n"},
		{name: "headless nodeport", src: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: None, type: NodePort, ports: [{port: 80}]}\n",
			want: []string{"spec.clusterIP: FieldValueInvalid"}},
		{name: "multi-port names", src: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 80}, {port: 80, name: b}, {port: 0, name: b, targetPort: 0}]\n",
			want: []string{"spec.ports[0].name: FieldValueRequired", "spec.ports[1]: FieldValueDuplicate", "spec.ports[2].name: FieldValueDuplicate",
				"spec.ports[2].port: FieldValueInvalid", "spec.ports[2].targetPort: FieldValueInvalid"}},
		{name: "externalName", src: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: ExternalName, clusterIP: 10.0.0.1}\n",
			want: []string{"spec.clusterIP: FieldValueForbidden", "spec.externalName: FieldValueRequired"}},
		{name: "valid externalName", src: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: ExternalName, externalName: db.example.com.}\n"},
		{name: "bad type and affinity", src: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: Public, sessionAffinity: Sticky, ports: [{port: 1}]}\n",
			want: []string{"spec.sessionAffinity: FieldValueNotSupported", "spec.type: FieldValueNotSupported"}},
		{name: "externalTrafficPolicy on ClusterIP", src: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {externalTrafficPolicy: Local, ports: [{port: 1}], clusterIP: 300.1.1.1}\n",
			want: []string{"spec.clusterIP: FieldValueInvalid", "spec.externalTrafficPolicy: FieldValueInvalid"}},

		// Workloads.
		{name: "valid deployment", src: deployHead},
		{name: "selector does not match", src: strings.Replace(deployHead, "labels: {app: a}", "labels: {app: b}", 1),
			want: []string{"spec.template.metadata.labels: FieldValueInvalid"}, msg: "`selector` does not match template `labels`"},
		{name: "selector missing", src: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: b}]\n",
			want: []string{"spec.selector: FieldValueRequired"}},
		{name: "empty selector", src: strings.Replace(deployHead, "selector: {matchLabels: {app: a}}", "selector: {}", 1),
			want: []string{"spec.selector: FieldValueInvalid"}, msg: "empty selector is invalid for deployment"},
		{name: "deployment pods must restart always", src: deployHead + "      restartPolicy: OnFailure\n",
			want: []string{"spec.template.spec.restartPolicy: FieldValueNotSupported"}},
		{name: "deployment strategy", src: deployHead + "  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}\n  replicas: -1\n  progressDeadlineSeconds: 5\n  minReadySeconds: 10\n",
			want: []string{"spec.progressDeadlineSeconds: FieldValueInvalid", "spec.replicas: FieldValueInvalid", "spec.strategy.rollingUpdate: FieldValueForbidden"}},
		{name: "rolling update zero zero", src: deployHead + "  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0%}}\n",
			want: []string{"spec.strategy.rollingUpdate.maxUnavailable: FieldValueInvalid"}, msg: "may not be 0 when `maxSurge` is 0"},
		{name: "rolling update bad values", src: deployHead + "  strategy: {rollingUpdate: {maxSurge: lots, maxUnavailable: 150%}}\n",
			want: []string{"spec.strategy.rollingUpdate.maxSurge: FieldValueInvalid", "spec.strategy.rollingUpdate.maxUnavailable: FieldValueInvalid"}},
		{name: "replicaset", src: "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: b}}\n    spec:\n      activeDeadlineSeconds: 5\n      containers: [{name: c, image: b}]\n",
			want: []string{"spec.template.metadata.labels: FieldValueInvalid", "spec.template.spec.activeDeadlineSeconds: FieldValueInvalid"}},
		{name: "replication controller", src: "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: r}\nspec:\n  selector: {app: a}\n  template:\n    metadata: {labels: {app: b}}\n    spec:\n      containers: [{name: c, image: b}]\n",
			want: []string{"spec.template.metadata.labels: FieldValueInvalid"}},
		{name: "replication controller without template", src: "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: r}\nspec:\n  selector: {app: a}\n",
			want: []string{"spec.template: FieldValueRequired"}},
		{name: "statefulset", src: "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  serviceName: web\n  podManagementPolicy: Random\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n      containers: [{name: c, image: b}]\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n  - metadata: {name: logs}\n    spec: {}\n",
			want: []string{"spec.podManagementPolicy: FieldValueNotSupported", "spec.volumeClaimTemplates[1].spec.accessModes: FieldValueRequired",
				"spec.volumeClaimTemplates[1].spec.resources.requests[storage]: FieldValueRequired"}},
		{name: "daemonset", src: "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  updateStrategy: {type: Sometimes}\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n      containers: [{name: c, image: b}]\n",
			want: []string{"spec.updateStrategy.type: FieldValueNotSupported"}},
		{name: "job needs OnFailure or Never", src: "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: b}]\n",
			want: []string{"spec.template.spec.restartPolicy: FieldValueNotSupported"}, msg: `Unsupported value: "Always": supported values: "OnFailure", "Never"`},
		{name: "valid job", src: "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  backoffLimit: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: b}]\n"},
		{name: "job numbers", src: "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  parallelism: -1\n  backoffLimit: -1\n  activeDeadlineSeconds: 0\n  completionMode: Indexed\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: b}]\n",
			want: []string{"spec.activeDeadlineSeconds: FieldValueInvalid", "spec.backoffLimit: FieldValueInvalid", "spec.completions: FieldValueRequired", "spec.parallelism: FieldValueInvalid"}},
		{name: "cronjob", src: "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '61 * * * *'\n  concurrencyPolicy: Sometimes\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Always\n          containers: [{name: c, image: b}]\n",
			want: []string{"spec.concurrencyPolicy: FieldValueNotSupported", "spec.jobTemplate.spec.template.spec.restartPolicy: FieldValueNotSupported", "spec.schedule: FieldValueInvalid"}},
		{name: "hpa", src: "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {kind: Deployment}\n  minReplicas: 3\n  maxReplicas: 2\n",
			want: []string{"spec.maxReplicas: FieldValueInvalid", "spec.scaleTargetRef.name: FieldValueRequired"}},
		{name: "hpa metric", src: "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {kind: Deployment, name: d}\n  maxReplicas: 2\n  metrics: [{type: Resource, resource: {name: memory, target: {type: Utilization}}}]\n",
			want: []string{"spec.metrics[0].resource.target.averageUtilization: FieldValueRequired"}},

		// Quotas and limits.
		{name: "resource quota", src: "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec:\n  hard: {pods: 10.5, widgets: '1', requests.cpu: -1, count/deployments.apps: '2'}\n  scopes: [Sometimes]\n",
			want: []string{"spec.hard[pods]: FieldValueInvalid", "spec.hard[requests.cpu]: FieldValueInvalid", "spec.hard[widgets]: FieldValueInvalid", "spec.scopes[0]: FieldValueNotSupported"}},
		{name: "limit range", src: "apiVersion: v1\nkind: LimitRange\nmetadata: {name: l}\nspec:\n  limits:\n  - {type: Container, min: {cpu: '2'}, max: {cpu: '1'}, maxLimitRequestRatio: {cpu: '0.5'}}\n  - {type: Pod, default: {cpu: '1'}}\n  - {type: Node}\n",
			want: []string{"spec.limits[0].default[cpu]: FieldValueInvalid", "spec.limits[0].defaultRequest[cpu]: FieldValueInvalid", "spec.limits[0].maxLimitRequestRatio[cpu]: FieldValueInvalid",
				"spec.limits[0].min[cpu]: FieldValueInvalid", "spec.limits[1].default: FieldValueForbidden", "spec.limits[2].type: FieldValueNotSupported"}},

		// Other kinds.
		{name: "configmap keys", src: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {'a b': x, ok: z}\nbinaryData: {ok: eHk=}\n",
			want: []string{"binaryData[ok]: FieldValueInvalid", "data[a b]: FieldValueInvalid"}},
		{name: "tls secret needs its keys", src: "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\nstringData: {tls.crt: x}\n",
			want: []string{"data[tls.key]: FieldValueRequired"}},
		{name: "ingress", src: "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec:\n  rules:\n  - host: 10.0.0.1\n    http:\n      paths:\n      - path: api\n        pathType: Prefix\n        backend: {service: {name: s}}\n      - path: /\n        backend: {service: {name: s, port: {number: 80}}}\n",
			want: []string{"spec.rules[0].host: FieldValueInvalid", "spec.rules[0].http.paths[0].backend.service.port: FieldValueRequired",
				"spec.rules[0].http.paths[0].path: FieldValueInvalid", "spec.rules[0].http.paths[1].pathType: FieldValueRequired"}},
		{name: "ingress backends", src: "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec:\n  defaultBackend: {resource: {kind: Bucket}, service: {name: s, port: {number: 80}}}\n  rules:\n  - http:\n      paths:\n      - {path: /, pathType: Exact, backend: {}}\n      - {path: /a, pathType: Exact, backend: {resource: {name: r}}}\n      - {path: /b, pathType: Exact, backend: {service: {name: s, port: {name: http, number: 80}}}}\n",
			want: []string{"spec.defaultBackend: FieldValueInvalid", "spec.rules[0].http.paths[0].backend: FieldValueInvalid",
				"spec.rules[0].http.paths[1].backend.resource.kind: FieldValueRequired", "spec.rules[0].http.paths[2].backend.service.port: FieldValueInvalid"}},
		{name: "empty ingress", src: "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec: {}\n", want: []string{"spec: FieldValueInvalid"}},
		{name: "role rules", src: "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules:\n- {apiGroups: [''], resources: [pods]}\n- {verbs: [get], nonResourceURLs: [/healthz]}\n- {verbs: [get], resources: [pods]}\n",
			want: []string{"rules[0].verbs: FieldValueRequired", "rules[1].nonResourceURLs: FieldValueInvalid", "rules[2].apiGroups: FieldValueRequired"}},
		{name: "cluster role binding", src: "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: b}\nroleRef: {kind: Role, name: r}\nsubjects: [{kind: ServiceAccount, name: sa}, {kind: Robot, name: r2}]\n",
			want: []string{"roleRef.kind: FieldValueNotSupported", "subjects[0].namespace: FieldValueRequired", "subjects[1].kind: FieldValueNotSupported"}},
		{name: "storage class", src: "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: s}\nreclaimPolicy: Recycle\n",
			want: []string{"provisioner: FieldValueRequired", "reclaimPolicy: FieldValueNotSupported"}},
		{name: "pv", src: "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv}\nspec: {capacity: {storage: 0}}\n",
			want: []string{"spec: FieldValueRequired", "spec.accessModes: FieldValueRequired", "spec.capacity[storage]: FieldValueInvalid"}},
		{name: "node taints", src: "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec:\n  podCIDR: 10.0.0.0/33\n  taints: [{key: k, effect: NoSchedule}, {key: k, effect: NoSchedule}, {key: j}]\n",
			want: []string{"spec.podCIDR: FieldValueInvalid", "spec.taints[1]: FieldValueDuplicate", "spec.taints[2].effect: FieldValueRequired"}},
		{name: "endpoints", src: "apiVersion: v1\nkind: Endpoints\nmetadata: {name: e}\nsubsets:\n- addresses: [{ip: 10.0.0.1}, {ip: nope}]\n  ports: [{port: 80}]\n",
			want: []string{"subsets[0].addresses[1].ip: FieldValueInvalid"}},
		{name: "pod status", src: podHead + "  containers: [{name: c, image: b}]\nstatus:\n  phase: Sleeping\n  podIP: 10.0.0.1\n  podIPs: [{ip: 10.0.0.2}]\n  containerStatuses: [{name: c, restartCount: -1}]\n",
			want: []string{"status.containerStatuses[0].restartCount: FieldValueInvalid", "status.phase: FieldValueNotSupported", "status.podIPs[0].ip: FieldValueInvalid"}},
		{name: "deployment status", src: deployHead + "status: {replicas: 2, readyReplicas: 3, availableReplicas: 1, updatedReplicas: -1}\n",
			want: []string{"status.readyReplicas: FieldValueInvalid", "status.updatedReplicas: FieldValueInvalid"}},
		{name: "node status", src: "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus:\n  capacity: {cpu: -1}\n  addresses: [{type: InternalIP, address: nope}, {type: Hostname, address: n1}]\n",
			want: []string{"status.addresses[0].address: FieldValueInvalid", "status.allocatable[cpu]: FieldValueInvalid", "status.capacity[cpu]: FieldValueInvalid"}},
		{name: "event namespace", src: "apiVersion: v1\nkind: Event\nmetadata: {name: e.1, namespace: a}\ninvolvedObject: {namespace: b}\ntype: Bad\n",
			want: []string{"involvedObject.namespace: FieldValueInvalid", "type: FieldValueNotSupported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := loadDefaulted(t, tt.src)
			errs := Validate(obj)
			if got, want := summary(errs), strings.Join(sortedCopy(tt.want), "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s\nfull: %v", got, want, errs.ToAggregate())
			}
			if tt.msg != "" && (len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), tt.msg)) {
				t.Errorf("errors %v do not say %q", errs.ToAggregate(), tt.msg)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func TestValidatorNodePortRange(t *testing.T) {
	r, err := ParsePortRange("20000-20100")
	if err != nil {
		t.Fatal(err)
	}
	v := Validator{NodePorts: r}
	if err := v.Validate(); err != nil {
		t.Fatal(err)
	}
	svc := loadDefaulted(t, "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  type: NodePort\n  ports: [{name: a, port: 80, nodePort: 20050}, {name: b, port: 81, nodePort: 30000}]\n")
	errs := v.ValidateObject(svc)
	if got := summary(errs); got != "spec.ports[1].nodePort: FieldValueInvalid" {
		t.Errorf("errors = %s", got)
	}
	if !strings.Contains(errs.ToAggregate().Error(), "20000-20100") {
		t.Errorf("error does not name the configured range: %v", errs.ToAggregate())
	}
	for _, bad := range []string{"", "x", "0-10", "100-50", "60000-70000"} {
		if _, err := ParsePortRange(bad); err == nil {
			t.Errorf("ParsePortRange(%q) succeeded", bad)
		}
	}
	if err := (Validator{}).Validate(); err == nil {
		t.Errorf("zero Validator passed Validate")
	}
}

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		s  string
		ok bool
	}{
		{"*/5 * * * *", true}, {"0 0 * * 0", true}, {"0 9-17 * JAN-MAR MON-FRI", true}, {"15,45 */2 1 * ?", true},
		{"@hourly", true}, {"@every 90s", true}, {"0 0 * * 7", true},
		{"* * * *", false}, {"60 * * * *", false}, {"* 24 * * *", false}, {"* * 0 * *", false}, {"*/0 * * * *", false},
		{"5-1 * * * *", false}, {"@often", false}, {"TZ=UTC 0 0 * * *", false}, {"@every soon", false},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			err := ParseSchedule(tt.s)
			if (err == nil) != tt.ok {
				t.Errorf("ParseSchedule(%q) = %v, want ok=%v", tt.s, err, tt.ok)
			}
		})
	}
}

func TestValidateUpdate(t *testing.T) {
	tests := []struct {
		name   string
		old    string
		mutate func(obj runtime.Object)
		want   []string
	}{
		{
			name: "deployment scale and image are fine",
			old:  deployHead,
			mutate: func(o runtime.Object) {
				d := o.(*appsv1.Deployment)
				d.Spec.Replicas = ptr(int32(5))
				d.Spec.Template.Spec.Containers[0].Image = "nginx:2"
			},
		},
		{
			name: "deployment selector is immutable",
			old:  deployHead,
			mutate: func(o runtime.Object) {
				d := o.(*appsv1.Deployment)
				d.Spec.Selector.MatchLabels = map[string]string{"app": "a", "tier": "web"}
				d.Spec.Template.Labels = map[string]string{"app": "a", "tier": "web"}
			},
			want: []string{"spec.selector: FieldValueInvalid"},
		},
		{
			name: "bad labels are reported once",
			old:  deployHead,
			mutate: func(o runtime.Object) {
				d := o.(*appsv1.Deployment)
				d.Labels = map[string]string{"bad key": "x"}
				d.Generation = -1
			},
			want: []string{"metadata.generation: FieldValueInvalid", "metadata.generation: FieldValueInvalid", "metadata.labels: FieldValueInvalid"},
		},
		{
			name:   "generation may not go back",
			old:    strings.Replace(deployHead, "metadata: {name: d}", "metadata: {name: d, generation: 4}", 1),
			mutate: func(o runtime.Object) { o.(*appsv1.Deployment).Generation = 3 },
			want:   []string{"metadata.generation: FieldValueInvalid"},
		},
		{
			name:   "name and namespace are immutable",
			old:    deployHead,
			mutate: func(o runtime.Object) { d := o.(*appsv1.Deployment); d.Name = "other"; d.Namespace = "prod" },
			want:   []string{"metadata.name: FieldValueInvalid", "metadata.namespace: FieldValueInvalid"},
		},
		{
			name:   "replicaset selector is immutable",
			old:    "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a, b: c}}\n    spec:\n      containers: [{name: c, image: b}]\n",
			mutate: func(o runtime.Object) { o.(*appsv1.ReplicaSet).Spec.Selector.MatchLabels["b"] = "c" },
			want:   []string{"spec.selector: FieldValueInvalid"},
		},
		{
			name: "statefulset identity is fixed",
			old:  "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  serviceName: web\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n      containers: [{name: c, image: b}]\n",
			mutate: func(o runtime.Object) {
				s := o.(*appsv1.StatefulSet)
				s.Spec.ServiceName = "other"
				s.Spec.Replicas = ptr(int32(3))
			},
			want: []string{"spec: FieldValueForbidden"},
		},
		{
			name: "statefulset scale and template are fine",
			old:  "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n      containers: [{name: c, image: b}]\n",
			mutate: func(o runtime.Object) {
				s := o.(*appsv1.StatefulSet)
				s.Spec.Replicas = ptr(int32(3))
				s.Spec.Template.Spec.Containers[0].Image = "b:2"
			},
		},
		{
			name:   "service clusterIP is immutable once set",
			old:    "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 53}]}\n",
			mutate: func(o runtime.Object) { o.(*corev1.Service).Spec.ClusterIP = "10.96.0.11" },
			want:   []string{"spec.clusterIP: FieldValueInvalid"},
		},
		{
			name:   "service clusterIP may be set from empty",
			old:    "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 53}]}\n",
			mutate: func(o runtime.Object) { o.(*corev1.Service).Spec.ClusterIP = "10.96.0.11" },
		},
		{
			name:   "pod image may change",
			old:    podHead + "  containers: [{name: c, image: busybox}]\n",
			mutate: func(o runtime.Object) { o.(*corev1.Pod).Spec.Containers[0].Image = "busybox:2" },
		},
		{
			name: "pod may be bound and get tolerations",
			old:  podHead + "  containers: [{name: c, image: busybox}]\n",
			mutate: func(o runtime.Object) {
				p := o.(*corev1.Pod)
				p.Spec.NodeName = "n1"
				p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists})
			},
		},
		{
			name: "pod resources written differently are unchanged",
			old:  podHead + "  containers: [{name: c, image: busybox, resources: {limits: {cpu: 500m}}}]\n",
			mutate: func(o runtime.Object) {
				o.(*corev1.Pod).Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("0.5")
			},
		},
		{
			name: "pod resources may not change",
			old:  podHead + "  containers: [{name: c, image: busybox, resources: {limits: {cpu: 500m}}}]\n",
			mutate: func(o runtime.Object) {
				o.(*corev1.Pod).Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("1")
			},
			want: []string{"spec: FieldValueForbidden"},
		},
		{
			name:   "pod spec is otherwise immutable",
			old:    podHead + "  containers: [{name: c, image: busybox}]\n",
			mutate: func(o runtime.Object) { o.(*corev1.Pod).Spec.Containers[0].Command = []string{"sh"} },
			want:   []string{"spec: FieldValueForbidden"},
		},
		{
			name:   "job template is immutable",
			old:    "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: b}]\n",
			mutate: func(o runtime.Object) { o.(*batchv1.Job).Spec.Template.Spec.Containers[0].Image = "b:2" },
			want:   []string{"spec.template: FieldValueInvalid"},
		},
		{
			name:   "job parallelism may change",
			old:    "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: b}]\n",
			mutate: func(o runtime.Object) { o.(*batchv1.Job).Spec.Parallelism = ptr(int32(3)) },
		},
		{
			name:   "immutable configmap",
			old:    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nimmutable: true\ndata: {a: b}\n",
			mutate: func(o runtime.Object) { c := o.(*corev1.ConfigMap); c.Data["a"] = "c"; c.Immutable = nil },
			want:   []string{"data: FieldValueForbidden", "immutable: FieldValueForbidden"},
		},
		{
			name:   "mutable configmap",
			old:    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
			mutate: func(o runtime.Object) { c := o.(*corev1.ConfigMap); c.Data["a"] = "c"; c.Immutable = ptr(true) },
		},
		{
			name: "immutable secret",
			old:  "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nimmutable: true\ndata: {a: Yg==}\n",
			mutate: func(o runtime.Object) {
				s := o.(*corev1.Secret)
				s.Data["a"] = []byte("c")
				s.Type = corev1.SecretTypeBasicAuth
			},
			want: []string{"data: FieldValueForbidden", "data[password]: FieldValueRequired", "data[username]: FieldValueRequired", "type: FieldValueInvalid"},
		},
		{
			name:   "rolebinding roleRef",
			old:    "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b}\nroleRef: {kind: Role, name: r}\n",
			mutate: func(o runtime.Object) { o.(*rbacv1.RoleBinding).RoleRef.Name = "other" },
			want:   []string{"roleRef: FieldValueInvalid"},
		},
		{
			name:   "pvc may grow but not change class",
			old:    "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n",
			mutate: func(o runtime.Object) { c := o.(*corev1.PersistentVolumeClaim); c.Spec.StorageClassName = ptr("fast") },
			want:   []string{"spec: FieldValueForbidden"},
		},
		{
			name:   "storage class parameters",
			old:    "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: s}\nprovisioner: example.com/x\n",
			mutate: func(o runtime.Object) { o.(*storagev1.StorageClass).Parameters = map[string]string{"type": "ssd"} },
			want:   []string{"parameters: FieldValueForbidden"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := loadDefaulted(t, tt.old)
			if errs := Validate(old); len(errs) > 0 {
				t.Fatalf("old object invalid: %v", errs.ToAggregate())
			}
			// The API server fills in the stored resourceVersion before
			// validating an unconditional update.
			m, err := metaOf(old)
			if err != nil {
				t.Fatal(err)
			}
			m.SetResourceVersion("7")
			newObj := old.DeepCopyObject()
			tt.mutate(newObj)
			// What the API server reports: the new object's own problems
			// and the update's, which never repeat each other.
			errs := append(Validate(newObj), ValidateUpdate(newObj, old)...)
			seen := map[string]bool{}
			for _, e := range errs {
				if seen[e.Error()] {
					t.Errorf("error reported twice: %v", e)
				}
				seen[e.Error()] = true
			}
			if got, want := summary(errs), strings.Join(sortedCopy(tt.want), "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s\nfull: %v", got, want, errs.ToAggregate())
			}
		})
	}
	t.Run("kind change", func(t *testing.T) {
		errs := ValidateUpdate(&corev1.Pod{}, &corev1.Service{})
		if len(errs) != 1 {
			t.Errorf("errors = %v, want one", errs)
		}
	})
}
