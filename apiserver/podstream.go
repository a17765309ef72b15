package apiserver

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/client"
	skiffv1 "github.com/skiffhq/skiff/proto/skiff/v1"
)

// agentCertAnnotation is the Node annotation where the agent publishes the
// SHA-256 of its self-signed serving certificate (agent/node's
// AnnotationAgentCert): the server pins it when it calls the agent.
const agentCertAnnotation = "skiff.io/agent-cert-sha256"

// podStreams serves PodStreamService to users by forwarding each call to
// the agent of the pod's node, authenticated there by a client certificate
// the cluster CA signs for this server.
type podStreams struct {
	skiffv1.UnimplementedPodStreamServiceServer
	s *Server

	once    sync.Once
	cert    tls.Certificate
	certErr error
}

var _ skiffv1.PodStreamServiceServer = (*podStreams)(nil)

func (p *podStreams) clientCert() (tls.Certificate, error) {
	p.once.Do(func() {
		certPEM, keyPEM, err := p.s.IssueClientCertificate("skiff-apiserver", []string{AdminGroup})
		if err != nil {
			p.certErr = err
			return
		}
		p.cert, p.certErr = tls.X509KeyPair(certPEM, keyPEM)
	})
	return p.cert, p.certErr
}

// dialAgent finds the pod, its node and the node's agent endpoint, and
// connects to it.
func (p *podStreams) dialAgent(ctx context.Context, ns, name string) (*corev1.Pod, *grpc.ClientConn, error) {
	pod, err := p.getPod(ctx, ns, name)
	if err != nil {
		return nil, nil, err
	}
	if pod.Spec.NodeName == "" {
		return nil, nil, client.NewBadRequest(fmt.Sprintf("pod %s/%s is not scheduled to a node yet", pod.Namespace, name))
	}
	conn, err := p.dialNode(ctx, pod.Spec.NodeName)
	if err != nil {
		return nil, nil, err
	}
	return pod, conn, nil
}

// getPod reads a pod from the store (namespace default when empty).
func (p *podStreams) getPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	if ns == "" {
		ns = "default"
	}
	podKind := p.s.kinds[schema.GroupResource{Resource: "pods"}]
	obj, _, err := p.s.getObject(ctx, podKind, ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Pod), nil
}

// dialNode connects to the agent of the named node.
func (p *podStreams) dialNode(ctx context.Context, nodeName string) (*grpc.ClientConn, error) {
	nodeKind := p.s.kinds[schema.GroupResource{Resource: "nodes"}]
	nobj, _, err := p.s.getObject(ctx, nodeKind, "", nodeName)
	if err != nil {
		return nil, err
	}
	return p.dialNodeObject(nobj.(*corev1.Node))
}

// dialNodeObject connects to the agent of node, pinning its certificate.
func (p *podStreams) dialNodeObject(node *corev1.Node) (*grpc.ClientConn, error) {
	var host string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			host = a.Address
			break
		}
	}
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	pin := node.Annotations[agentCertAnnotation]
	if host == "" || port == 0 || pin == "" {
		return nil, client.NewUnavailable(fmt.Sprintf("node %s publishes no log/exec endpoint (its agent runs without the cluster CA)", node.Name))
	}
	cert, err := p.clientCert()
	if err != nil {
		return nil, client.NewInternal(err)
	}
	tlsCfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// The agent's certificate is self-signed: it is pinned by the
		// digest its Node publishes instead of checked against a CA.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("agent presented no certificate")
			}
			sum := sha256.Sum256(raw[0])
			if hex.EncodeToString(sum[:]) != pin {
				return fmt.Errorf("agent certificate of node %s does not match the pinned digest", node.Name)
			}
			return nil
		},
	}
	conn, err := grpc.NewClient(net.JoinHostPort(host, strconv.Itoa(int(port))), grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		return nil, client.NewUnavailable(fmt.Sprintf("node %s: %v", node.Name, err))
	}
	return conn, nil
}

// Logs implements PodStreamService by forwarding to the pod's agent.
func (p *podStreams) Logs(req *skiffv1.LogsRequest, stream skiffv1.PodStreamService_LogsServer) error {
	ctx := stream.Context()
	pod, conn, err := p.dialAgent(ctx, req.Namespace, req.Pod)
	if err != nil {
		return err
	}
	defer conn.Close()
	fwd := proto.Clone(req).(*skiffv1.LogsRequest)
	fwd.Namespace, fwd.PodUid = pod.Namespace, string(pod.UID)
	up, err := skiffv1.NewPodStreamServiceClient(conn).Logs(ctx, fwd)
	if err != nil {
		return err
	}
	for {
		m, err := up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(m); err != nil {
			return err
		}
	}
}

// Exec implements PodStreamService by forwarding to the pod's agent.
func (p *podStreams) Exec(stream skiffv1.PodStreamService_ExecServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	st := first.GetStart()
	if st == nil {
		return client.NewBadRequest("exec: the first message must say what to run (start)")
	}
	pod, conn, err := p.dialAgent(ctx, st.Namespace, st.Pod)
	if err != nil {
		return err
	}
	defer conn.Close()
	up, err := skiffv1.NewPodStreamServiceClient(conn).Exec(ctx)
	if err != nil {
		return err
	}
	fwd := proto.Clone(st).(*skiffv1.ExecStart)
	fwd.Namespace, fwd.PodUid = pod.Namespace, string(pod.UID)
	if err := up.Send(&skiffv1.ExecRequest{Start: fwd}); err != nil {
		return err
	}
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				_ = up.CloseSend()
				return
			}
			if err := up.Send(m); err != nil {
				return
			}
		}
	}()
	for {
		m, err := up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(m); err != nil {
			return err
		}
	}
}
