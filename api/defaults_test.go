package api

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// decodeOne decodes a single-object manifest or fails the test.
func decodeOne(t *testing.T, src string) runtime.Object {
	t.Helper()
	objs, err := Decode("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("got %d objects, want 1", len(objs))
	}
	return objs[0].Obj
}

func TestDefaultPullPolicy(t *testing.T) {
	tests := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"nginx", corev1.PullAlways},
		{"nginx:latest", corev1.PullAlways},
		{"nginx:1.27", corev1.PullIfNotPresent},
		{"registry:5000/team/app", corev1.PullAlways},
		{"registry:5000/team/app:v2", corev1.PullIfNotPresent},
		{"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullIfNotPresent},
		{"nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullIfNotPresent},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			if got := defaultPullPolicy(tt.image); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, obj runtime.Object)
	}{
		{
			name: "pod",
			src: `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: a
    image: busybox:1.36
    ports: [{containerPort: 80}]
    resources:
      limits: {cpu: 500m, memory: 64Mi}
      requests: {memory: 32Mi}
    livenessProbe:
      httpGet: {port: 80}
  volumes:
  - name: scratch
  - name: cfg
    configMap: {name: c}
`,
			check: func(t *testing.T, obj runtime.Object) {
				p := obj.(*corev1.Pod)
				s := p.Spec
				c := s.Containers[0]
				eq(t, "namespace", p.Namespace, "default")
				eq(t, "restartPolicy", s.RestartPolicy, corev1.RestartPolicyAlways)
				eq(t, "dnsPolicy", s.DNSPolicy, corev1.DNSClusterFirst)
				eq(t, "terminationGracePeriodSeconds", *s.TerminationGracePeriodSeconds, int64(30))
				eq(t, "schedulerName", s.SchedulerName, "default-scheduler")
				eq(t, "enableServiceLinks", *s.EnableServiceLinks, true)
				eq(t, "securityContext", *s.SecurityContext, corev1.PodSecurityContext{})
				eq(t, "terminationMessagePath", c.TerminationMessagePath, "/dev/termination-log")
				eq(t, "terminationMessagePolicy", c.TerminationMessagePolicy, corev1.TerminationMessageReadFile)
				eq(t, "imagePullPolicy", c.ImagePullPolicy, corev1.PullIfNotPresent)
				eq(t, "port protocol", c.Ports[0].Protocol, corev1.ProtocolTCP)
				eq(t, "cpu request from limit", c.Resources.Requests.Cpu().String(), "500m")
				eq(t, "memory request kept", c.Resources.Requests.Memory().String(), "32Mi")
				pr := c.LivenessProbe
				eq(t, "probe", [4]int32{pr.TimeoutSeconds, pr.PeriodSeconds, pr.SuccessThreshold, pr.FailureThreshold}, [4]int32{1, 10, 1, 3})
				eq(t, "httpGet path", pr.HTTPGet.Path, "/")
				eq(t, "httpGet scheme", pr.HTTPGet.Scheme, corev1.URISchemeHTTP)
				if s.Volumes[0].EmptyDir == nil {
					t.Errorf("volume without a source is not an emptyDir: %+v", s.Volumes[0])
				}
				eq(t, "configMap defaultMode", *s.Volumes[1].ConfigMap.DefaultMode, int32(0o644))
			},
		},
		{
			name: "explicit values win",
			src: `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: prod}
spec:
  restartPolicy: Never
  dnsPolicy: Default
  terminationGracePeriodSeconds: 0
  containers:
  - name: a
    image: busybox
    imagePullPolicy: Never
    ports: [{containerPort: 53, protocol: UDP}]
`,
			check: func(t *testing.T, obj runtime.Object) {
				p := obj.(*corev1.Pod)
				eq(t, "namespace", p.Namespace, "prod")
				eq(t, "restartPolicy", p.Spec.RestartPolicy, corev1.RestartPolicyNever)
				eq(t, "dnsPolicy", p.Spec.DNSPolicy, corev1.DNSDefault)
				eq(t, "terminationGracePeriodSeconds", *p.Spec.TerminationGracePeriodSeconds, int64(0))
				eq(t, "imagePullPolicy", p.Spec.Containers[0].ImagePullPolicy, corev1.PullNever)
				eq(t, "protocol", p.Spec.Containers[0].Ports[0].Protocol, corev1.ProtocolUDP)
			},
		},
		{
			name: "service",
			src: `apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  type: NodePort
  selector: {app: a}
  ports:
  - {name: http, port: 80}
  - {name: dns, port: 53, protocol: UDP, targetPort: dns}
`,
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*corev1.Service).Spec
				eq(t, "type", s.Type, corev1.ServiceTypeNodePort)
				eq(t, "sessionAffinity", s.SessionAffinity, corev1.ServiceAffinityNone)
				eq(t, "protocol", s.Ports[0].Protocol, corev1.ProtocolTCP)
				eq(t, "targetPort = port", s.Ports[0].TargetPort, intstr.FromInt32(80))
				eq(t, "named targetPort kept", s.Ports[1].TargetPort, intstr.FromString("dns"))
				eq(t, "externalTrafficPolicy", s.ExternalTrafficPolicy, corev1.ServiceExternalTrafficPolicyCluster)
				eq(t, "internalTrafficPolicy", *s.InternalTrafficPolicy, corev1.ServiceInternalTrafficPolicyCluster)
				eq(t, "nodePort left to the allocator", s.Ports[0].NodePort, int32(0))
			},
		},
		{
			name: "service defaults to ClusterIP",
			src:  "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  sessionAffinity: ClientIP\n  ports: [{port: 80}]\n",
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*corev1.Service).Spec
				eq(t, "type", s.Type, corev1.ServiceTypeClusterIP)
				eq(t, "externalTrafficPolicy", s.ExternalTrafficPolicy, corev1.ServiceExternalTrafficPolicy(""))
				eq(t, "affinity timeout", *s.SessionAffinityConfig.ClientIP.TimeoutSeconds, int32(10800))
			},
		},
		{
			name: "deployment",
			src:  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: nginx}]\n",
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*appsv1.Deployment).Spec
				eq(t, "replicas", *s.Replicas, int32(1))
				eq(t, "strategy", s.Strategy.Type, appsv1.RollingUpdateDeploymentStrategyType)
				eq(t, "maxSurge", *s.Strategy.RollingUpdate.MaxSurge, intstr.FromString("25%"))
				eq(t, "maxUnavailable", *s.Strategy.RollingUpdate.MaxUnavailable, intstr.FromString("25%"))
				eq(t, "revisionHistoryLimit", *s.RevisionHistoryLimit, int32(10))
				eq(t, "progressDeadlineSeconds", *s.ProgressDeadlineSeconds, int32(600))
				eq(t, "template restartPolicy", s.Template.Spec.RestartPolicy, corev1.RestartPolicyAlways)
				if s.Template.Spec.EnableServiceLinks != nil {
					t.Errorf("template got enableServiceLinks; only Pods do")
				}
			},
		},
		{
			name: "recreate deployment gets no rollingUpdate",
			src:  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  strategy: {type: Recreate}\n",
			check: func(t *testing.T, obj runtime.Object) {
				if ru := obj.(*appsv1.Deployment).Spec.Strategy.RollingUpdate; ru != nil {
					t.Errorf("rollingUpdate = %+v, want nil", ru)
				}
			},
		},
		{
			name: "replicaset",
			src:  "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\n",
			check: func(t *testing.T, obj runtime.Object) {
				eq(t, "replicas", *obj.(*appsv1.ReplicaSet).Spec.Replicas, int32(1))
			},
		},
		{
			name: "replication controller selector and labels from template",
			src:  "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: r}\nspec:\n  template:\n    metadata: {labels: {app: a}}\n",
			check: func(t *testing.T, obj runtime.Object) {
				rc := obj.(*corev1.ReplicationController)
				eq(t, "selector", rc.Spec.Selector, map[string]string{"app": "a"})
				eq(t, "labels", rc.Labels, map[string]string{"app": "a"})
				eq(t, "replicas", *rc.Spec.Replicas, int32(1))
			},
		},
		{
			name: "replication controller keeps its own selector and labels",
			src:  "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: r, labels: {team: x}}\nspec:\n  selector: {app: a}\n  template:\n    metadata: {labels: {app: a, v: '2'}}\n",
			check: func(t *testing.T, obj runtime.Object) {
				rc := obj.(*corev1.ReplicationController)
				eq(t, "selector", rc.Spec.Selector, map[string]string{"app": "a"})
				eq(t, "labels", rc.Labels, map[string]string{"team": "x"})
			},
		},
		{
			name: "statefulset",
			src:  "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  volumeClaimTemplates:\n  - metadata: {name: data}\n",
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*appsv1.StatefulSet).Spec
				eq(t, "podManagementPolicy", s.PodManagementPolicy, appsv1.OrderedReadyPodManagement)
				eq(t, "updateStrategy", s.UpdateStrategy.Type, appsv1.RollingUpdateStatefulSetStrategyType)
				eq(t, "partition", *s.UpdateStrategy.RollingUpdate.Partition, int32(0))
				eq(t, "replicas", *s.Replicas, int32(1))
				eq(t, "revisionHistoryLimit", *s.RevisionHistoryLimit, int32(10))
				eq(t, "whenDeleted", s.PersistentVolumeClaimRetentionPolicy.WhenDeleted, appsv1.RetainPersistentVolumeClaimRetentionPolicyType)
				eq(t, "claim volumeMode", *s.VolumeClaimTemplates[0].Spec.VolumeMode, corev1.PersistentVolumeFilesystem)
			},
		},
		{
			name: "daemonset",
			src:  "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\n",
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*appsv1.DaemonSet).Spec
				eq(t, "updateStrategy", s.UpdateStrategy.Type, appsv1.RollingUpdateDaemonSetStrategyType)
				eq(t, "maxUnavailable", *s.UpdateStrategy.RollingUpdate.MaxUnavailable, intstr.FromInt32(1))
				eq(t, "maxSurge", *s.UpdateStrategy.RollingUpdate.MaxSurge, intstr.FromInt32(0))
				eq(t, "revisionHistoryLimit", *s.RevisionHistoryLimit, int32(10))
			},
		},
		{
			name: "job",
			src:  "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n",
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*batchv1.Job).Spec
				eq(t, "completions", *s.Completions, int32(1))
				eq(t, "parallelism", *s.Parallelism, int32(1))
				eq(t, "backoffLimit", *s.BackoffLimit, int32(6))
				eq(t, "completionMode", *s.CompletionMode, batchv1.NonIndexedCompletion)
				eq(t, "suspend", *s.Suspend, false)
				// Restart policy defaults to Always like any pod spec, which
				// Job validation then rejects, as in Kubernetes.
				eq(t, "template restartPolicy", s.Template.Spec.RestartPolicy, corev1.RestartPolicyAlways)
			},
		},
		{
			name: "work-queue job keeps completions unset",
			src:  "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  parallelism: 4\n",
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*batchv1.Job).Spec
				if s.Completions != nil {
					t.Errorf("completions = %d, want unset", *s.Completions)
				}
				eq(t, "parallelism", *s.Parallelism, int32(4))
			},
		},
		{
			name: "cronjob",
			src:  "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '*/5 * * * *'\n",
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*batchv1.CronJob).Spec
				eq(t, "concurrencyPolicy", s.ConcurrencyPolicy, batchv1.AllowConcurrent)
				eq(t, "successfulJobsHistoryLimit", *s.SuccessfulJobsHistoryLimit, int32(3))
				eq(t, "failedJobsHistoryLimit", *s.FailedJobsHistoryLimit, int32(1))
				eq(t, "suspend", *s.Suspend, false)
				if s.JobTemplate.Spec.BackoffLimit != nil {
					t.Errorf("jobTemplate got Job defaults; the Job gets them when created")
				}
			},
		},
		{
			name: "namespace is cluster-scoped and labelled with its name",
			src:  "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, namespace: default}\n",
			check: func(t *testing.T, obj runtime.Object) {
				ns := obj.(*corev1.Namespace)
				eq(t, "namespace", ns.Namespace, "")
				eq(t, "name label", ns.Labels["kubernetes.io/metadata.name"], "team-a")
				eq(t, "phase", ns.Status.Phase, corev1.NamespaceActive)
			},
		},
		{
			name: "secret",
			src:  "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {user: YWRtaW4=, password: b2xk}\nstringData: {password: new}\n",
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*corev1.Secret)
				eq(t, "type", s.Type, corev1.SecretTypeOpaque)
				eq(t, "data", s.Data, map[string][]byte{"user": []byte("admin"), "password": []byte("new")})
				if s.StringData != nil {
					t.Errorf("stringData kept: %v", s.StringData)
				}
			},
		},
		{
			name: "hpa",
			src:  "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  maxReplicas: 5\n  behavior: {}\n",
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*autoscalingv2.HorizontalPodAutoscaler).Spec
				eq(t, "minReplicas", *s.MinReplicas, int32(1))
				eq(t, "metric", s.Metrics[0].Resource.Name, corev1.ResourceCPU)
				eq(t, "utilization", *s.Metrics[0].Resource.Target.AverageUtilization, int32(80))
				eq(t, "scaleDown window", *s.Behavior.ScaleDown.StabilizationWindowSeconds, int32(300))
				eq(t, "scaleUp window", *s.Behavior.ScaleUp.StabilizationWindowSeconds, int32(0))
			},
		},
		{
			name: "limitrange",
			src: `apiVersion: v1
kind: LimitRange
metadata: {name: l}
spec:
  limits:
  - type: Container
    max: {cpu: "2", memory: 1Gi}
    default: {memory: 512Mi}
    min: {cpu: 100m}
`,
			check: func(t *testing.T, obj runtime.Object) {
				it := obj.(*corev1.LimitRange).Spec.Limits[0]
				eq(t, "default cpu from max", it.Default.Cpu().String(), "2")
				eq(t, "default memory kept", it.Default.Memory().String(), "512Mi")
				eq(t, "defaultRequest memory from default", it.DefaultRequest.Memory().String(), "512Mi")
				eq(t, "defaultRequest cpu from default", it.DefaultRequest.Cpu().String(), "2")
			},
		},
		{
			name: "pv and pvc",
			src:  "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv}\nspec:\n  hostPath: {path: /data}\n",
			check: func(t *testing.T, obj runtime.Object) {
				pv := obj.(*corev1.PersistentVolume)
				eq(t, "reclaim", pv.Spec.PersistentVolumeReclaimPolicy, corev1.PersistentVolumeReclaimRetain)
				eq(t, "volumeMode", *pv.Spec.VolumeMode, corev1.PersistentVolumeFilesystem)
				eq(t, "phase", pv.Status.Phase, corev1.VolumePending)
				eq(t, "hostPath type", *pv.Spec.HostPath.Type, corev1.HostPathUnset)
				eq(t, "cluster-scoped", pv.Namespace, "")
			},
		},
		{
			name: "rolebinding subjects",
			src: `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb}
roleRef: {kind: Role, name: r}
subjects:
- {kind: User, name: alice}
- {kind: ServiceAccount, name: bot}
`,
			check: func(t *testing.T, obj runtime.Object) {
				rb := obj.(*rbacv1.RoleBinding)
				eq(t, "roleRef apiGroup", rb.RoleRef.APIGroup, rbacv1.GroupName)
				eq(t, "user apiGroup", rb.Subjects[0].APIGroup, rbacv1.GroupName)
				eq(t, "sa apiGroup", rb.Subjects[1].APIGroup, "")
			},
		},
		{
			name: "storageclass",
			src:  "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: sc}\nprovisioner: example.com/x\n",
			check: func(t *testing.T, obj runtime.Object) {
				sc := obj.(*storagev1.StorageClass)
				eq(t, "reclaimPolicy", *sc.ReclaimPolicy, corev1.PersistentVolumeReclaimDelete)
				eq(t, "bindingMode", *sc.VolumeBindingMode, storagev1.VolumeBindingImmediate)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := decodeOne(t, tt.src)
			Default(obj)
			tt.check(t, obj)
			// Defaulting is idempotent.
			again := obj.DeepCopyObject()
			Default(again)
			if !reflect.DeepEqual(again, obj) {
				t.Errorf("second Default changed the object")
			}
		})
	}
}

func TestDefaultRequestsNotShared(t *testing.T) {
	p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "a", Image: "b",
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
	}}}}
	Default(p)
	r := p.Spec.Containers[0].Resources
	q := r.Requests[corev1.ResourceCPU]
	q.Add(resource.MustParse("1"))
	if r.Limits.Cpu().String() != "1" {
		t.Errorf("request defaulted from limit shares its value: limit now %s", r.Limits.Cpu())
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestDecodeAutoscalingV1(t *testing.T) {
	obj := decodeOne(t, "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {kind: Deployment, name: d}\n  maxReplicas: 4\n  targetCPUUtilizationPercentage: 60\n")
	h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		t.Fatalf("got %T, want autoscaling/v2 HorizontalPodAutoscaler", obj)
	}
	eq(t, "apiVersion", h.APIVersion, "autoscaling/v2")
	eq(t, "metric", h.Spec.Metrics, []autoscalingv2.MetricSpec{cpuUtilization(60)})
	eq(t, "maxReplicas", h.Spec.MaxReplicas, int32(4))
	Default(h)
	eq(t, "metrics not re-defaulted", len(h.Spec.Metrics), 1)
}
