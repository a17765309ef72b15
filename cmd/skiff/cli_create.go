package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/api"
)

// generatedObject is a create subcommand or expose: build an object from
// flags, then print it (--dry-run=client -o yaml) or create it.
type generatedObject struct {
	cf     cliFlags
	dryRun string
	output string
}

func (g *generatedObject) register(cmd *cobra.Command) {
	g.cf.register(cmd, false)
	cmd.Flags().StringVar(&g.dryRun, "dry-run", "none", "client: print the object instead of creating it")
	cmd.Flags().Lookup("dry-run").NoOptDefVal = "client"
	cmd.Flags().StringVarP(&g.output, "output", "o", "", "with --dry-run=client: yaml or json")
}

func (g *generatedObject) finish(cmd *cobra.Command, obj runtime.Object, display string) error {
	if g.cf.namespace != "" {
		if m, ok := obj.(metav1.Object); ok {
			if info, err := api.KindOf(obj); err == nil && info.Namespaced {
				m.SetNamespace(g.cf.namespace)
			}
		}
	}
	switch g.dryRun {
	case "none", "":
	case "client":
		if g.output == "" {
			fmt.Fprintf(cmd.OutOrStdout(), "%s created (dry run)\n", display)
			return nil
		}
		data, err := api.Encode(obj, g.output)
		if err != nil {
			return err
		}
		_, err = cmd.OutOrStdout().Write(data)
		return err
	default:
		return fmt.Errorf("--dry-run=%s: want none or client", g.dryRun)
	}
	c, err := g.cf.client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := g.cf.request(cmd.Context())
	defer cancel()
	if err := c.Create(ctx, obj); err != nil {
		return cliError(err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s created\n", display)
	return nil
}

// literalsAndFiles reads --from-literal K=V and --from-file [K=]PATH.
func literalsAndFiles(literals, files []string) (map[string]string, error) {
	data := map[string]string{}
	for _, l := range literals {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--from-literal %q: want KEY=VALUE", l)
		}
		data[k] = v
	}
	for _, f := range files {
		key, path, ok := strings.Cut(f, "=")
		if !ok {
			key, path = filepath.Base(f), f
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		data[key] = string(b)
	}
	return data, nil
}

func newCreateConfigMapCmd() *cobra.Command {
	var (
		g               generatedObject
		literals, files []string
	)
	cmd := &cobra.Command{
		Use:     "configmap NAME [--from-literal=K=V] [--from-file=[K=]PATH]",
		Aliases: []string{"cm"},
		Short:   "Create a config map from literals and files",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := literalsAndFiles(literals, files)
			if err != nil {
				return err
			}
			cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
				ObjectMeta: metav1.ObjectMeta{Name: args[0]}, Data: data}
			return g.finish(cmd, cm, "configmap/"+args[0])
		},
	}
	g.register(cmd)
	cmd.Flags().StringArrayVar(&literals, "from-literal", nil, "KEY=VALUE (repeatable)")
	cmd.Flags().StringArrayVar(&files, "from-file", nil, "[KEY=]PATH (repeatable)")
	return cmd
}

func newCreateSecretCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "secret", Short: "Create a secret"}
	var (
		g               generatedObject
		literals, files []string
		typ             string
	)
	generic := &cobra.Command{
		Use:   "generic NAME [--from-literal=K=V] [--from-file=[K=]PATH]",
		Short: "Create a generic (Opaque) secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := literalsAndFiles(literals, files)
			if err != nil {
				return err
			}
			s := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: metav1.ObjectMeta{Name: args[0]}, Type: corev1.SecretType(typ), Data: map[string][]byte{}}
			for k, v := range data {
				s.Data[k] = []byte(v)
			}
			return g.finish(cmd, s, "secret/"+args[0])
		},
	}
	g.register(generic)
	generic.Flags().StringArrayVar(&literals, "from-literal", nil, "KEY=VALUE (repeatable)")
	generic.Flags().StringArrayVar(&files, "from-file", nil, "[KEY=]PATH (repeatable)")
	generic.Flags().StringVar(&typ, "type", string(corev1.SecretTypeOpaque), "secret type")
	cmd.AddCommand(generic)
	return cmd
}

func newCreateDeploymentCmd() *cobra.Command {
	var (
		g        generatedObject
		images   []string
		replicas int32
		port     int32
	)
	cmd := &cobra.Command{
		Use:     "deployment NAME --image=IMAGE [--replicas=N] [--port=P]",
		Aliases: []string{"deploy"},
		Short:   "Create a deployment",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(images) == 0 {
				return errors.New("--image is required")
			}
			name := args[0]
			labels := map[string]string{"app": name}
			var ctrs []corev1.Container
			for i, img := range images {
				cname := img
				if j := strings.LastIndexAny(cname, "/"); j >= 0 {
					cname = cname[j+1:]
				}
				cname, _, _ = strings.Cut(cname, ":")
				cname, _, _ = strings.Cut(cname, "@")
				ctr := corev1.Container{Name: cname, Image: img}
				if port > 0 && i == 0 {
					ctr.Ports = []corev1.ContainerPort{{ContainerPort: port}}
				}
				ctrs = append(ctrs, ctr)
			}
			d := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
				Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{Containers: ctrs}}}}
			return g.finish(cmd, d, "deployment.apps/"+name)
		},
	}
	g.register(cmd)
	cmd.Flags().StringArrayVar(&images, "image", nil, "container image (repeatable)")
	cmd.Flags().Int32Var(&replicas, "replicas", 1, "number of replicas")
	cmd.Flags().Int32Var(&port, "port", 0, "container port of the first container")
	return cmd
}

func newExposeCmd() *cobra.Command {
	var (
		g          generatedObject
		port       int32
		targetPort string
		typ        string
		name       string
		protocol   string
		nodePort   int32
	)
	cmd := &cobra.Command{
		Use:     "expose (KIND NAME | KIND/NAME) --port=P [--target-port=T] [--type=ClusterIP|NodePort|LoadBalancer] [--name=N]",
		Short:   "Create a service selecting the pods of a deployment, replica set, replication controller, pod or service",
		Example: "  skiff expose deploy/web --port=80 --target-port=8080 --type=NodePort",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.cf.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := g.cf.request(cmd.Context())
			defer cancel()
			ts, err := namedTargets(ctx, c, args)
			if err != nil {
				return err
			}
			if len(ts) != 1 {
				return errors.New("expose one object at a time")
			}
			t := ts[0]
			info, err := resolveRef(t.ref)
			if err != nil {
				return err
			}
			obj := info.New()
			if err := c.Get(ctx, t.ref.Namespace, t.ref.Name, obj); err != nil {
				return cliError(err)
			}
			selector, ports, err := exposeSource(obj)
			if err != nil {
				return err
			}
			if port == 0 {
				if len(ports) == 0 {
					return errors.New("couldn't find a port to expose: pass --port")
				}
				port = ports[0]
			}
			if name == "" {
				name = t.ref.Name
			}
			sp := corev1.ServicePort{Port: port, Protocol: corev1.Protocol(protocol), NodePort: nodePort}
			if targetPort != "" {
				sp.TargetPort = intstr.Parse(targetPort)
			}
			svc := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: t.ref.Namespace, Labels: obj.(metav1.Object).GetLabels()},
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceType(typ), Selector: selector, Ports: []corev1.ServicePort{sp}}}
			return g.finish(cmd, svc, "service/"+name)
		},
	}
	g.register(cmd)
	f := cmd.Flags()
	f.Int32Var(&port, "port", 0, "port the service serves on (default: the first container port)")
	f.StringVar(&targetPort, "target-port", "", "port or port name on the pods (default: --port)")
	f.StringVar(&typ, "type", "ClusterIP", "ClusterIP, NodePort or LoadBalancer")
	f.StringVar(&name, "name", "", "service name (default: the object's)")
	f.StringVar(&protocol, "protocol", "TCP", "TCP, UDP or SCTP")
	f.Int32Var(&nodePort, "node-port", 0, "node port (30000-32767) for NodePort services")
	return cmd
}

// exposeSource is the pod selector and container ports of what is exposed.
func exposeSource(obj runtime.Object) (map[string]string, []int32, error) {
	podPorts := func(spec corev1.PodSpec) []int32 {
		var ps []int32
		for _, c := range spec.Containers {
			for _, p := range c.Ports {
				ps = append(ps, p.ContainerPort)
			}
		}
		return ps
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		if o.Spec.Selector == nil || len(o.Spec.Selector.MatchExpressions) > 0 {
			return nil, nil, errors.New("the deployment's selector cannot be expressed as a service selector (matchLabels only)")
		}
		return o.Spec.Selector.MatchLabels, podPorts(o.Spec.Template.Spec), nil
	case *appsv1.ReplicaSet:
		if o.Spec.Selector == nil || len(o.Spec.Selector.MatchExpressions) > 0 {
			return nil, nil, errors.New("the replica set's selector cannot be expressed as a service selector (matchLabels only)")
		}
		return o.Spec.Selector.MatchLabels, podPorts(o.Spec.Template.Spec), nil
	case *corev1.ReplicationController:
		var ps []int32
		if o.Spec.Template != nil {
			ps = podPorts(o.Spec.Template.Spec)
		}
		return o.Spec.Selector, ps, nil
	case *corev1.Pod:
		if len(o.Labels) == 0 {
			return nil, nil, errors.New("the pod has no labels to select it by")
		}
		return o.Labels, podPorts(o.Spec), nil
	case *corev1.Service:
		var ps []int32
		for _, p := range o.Spec.Ports {
			ps = append(ps, p.Port)
		}
		return o.Spec.Selector, ps, nil
	}
	return nil, nil, fmt.Errorf("cannot expose a %T", obj)
}

func init() { rootCmd.AddCommand(newExposeCmd()) }
