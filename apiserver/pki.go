package apiserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The cluster's secrets live in the store, so that every API server of the
// cluster shares one CA and one set of tokens; whoever can read the store
// can act as the cluster anyway. Each server's serving certificate is its
// own (its SANs name its addresses) and lives in its data dir.
const (
	pkiCACert     = "/skiff/pki/ca.crt"
	pkiCAKey      = "/skiff/pki/ca.key"
	pkiAdminToken = "/skiff/pki/admin-token"
	pkiNodeToken  = "/skiff/pki/node-token"
)

// Identities given to certificates and tokens.
const (
	AdminUser     = "skiff-admin"
	AdminGroup    = "system:masters"
	NodeJoinUser  = "system:node-join"
	NodesGroup    = "system:nodes"
	caCommonName  = "skiff-ca"
	caValidity    = 10 * 365 * 24 * time.Hour
	leafValidity  = 365 * 24 * time.Hour
	servingCertFn = "serving.crt"
	servingKeyFn  = "serving.key"
)

// clusterPKI is the cluster CA and the bootstrap tokens.
type clusterPKI struct {
	caCert     *x509.Certificate
	caKey      *ecdsa.PrivateKey
	caPEM      []byte
	adminToken string
	nodeToken  string
}

// loadOrCreatePKI reads the CA and tokens from the store, creating them in
// one transaction on the cluster's first start. Two servers starting at once
// agree: the loser of the transaction reads the winner's.
func loadOrCreatePKI(ctx context.Context, cli *clientv3.Client) (*clusterPKI, error) {
	for attempt := 0; attempt < 3; attempt++ {
		resp, err := cli.Get(ctx, "/skiff/pki/", clientv3.WithPrefix())
		if err != nil {
			return nil, fmt.Errorf("reading cluster PKI: %w", err)
		}
		vals := map[string][]byte{}
		for _, kv := range resp.Kvs {
			vals[string(kv.Key)] = kv.Value
		}
		if vals[pkiCACert] != nil {
			return parsePKI(vals)
		}
		caPEM, keyPEM, err := newCA()
		if err != nil {
			return nil, err
		}
		admin, node := randomToken(), randomToken()
		tr, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(pkiCACert), "=", 0)).Then(
			clientv3.OpPut(pkiCACert, string(caPEM)),
			clientv3.OpPut(pkiCAKey, string(keyPEM)),
			clientv3.OpPut(pkiAdminToken, admin),
			clientv3.OpPut(pkiNodeToken, node),
		).Commit()
		if err != nil {
			return nil, fmt.Errorf("storing cluster PKI: %w", err)
		}
		if tr.Succeeded {
			return parsePKI(map[string][]byte{pkiCACert: caPEM, pkiCAKey: keyPEM,
				pkiAdminToken: []byte(admin), pkiNodeToken: []byte(node)})
		}
	}
	return nil, errors.New("cluster PKI: could not read or create it")
}

func parsePKI(vals map[string][]byte) (*clusterPKI, error) {
	cert, err := parseCertPEM(vals[pkiCACert])
	if err != nil {
		return nil, fmt.Errorf("cluster CA certificate: %w", err)
	}
	kb, _ := pem.Decode(vals[pkiCAKey])
	if kb == nil {
		return nil, errors.New("cluster CA key: no PEM block")
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cluster CA key: %w", err)
	}
	p := &clusterPKI{caCert: cert, caKey: key, caPEM: vals[pkiCACert],
		adminToken: string(vals[pkiAdminToken]), nodeToken: string(vals[pkiNodeToken])}
	if len(p.adminToken) < 32 || len(p.nodeToken) < 32 {
		return nil, errors.New("cluster tokens missing from the store")
	}
	return p, nil
}

func parseCertPEM(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return x509.ParseCertificate(b.Bytes)
}

func randomToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

func encodeKey(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func newCA() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: caCommonName, Organization: []string{"skiff"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), encodeKey(key), nil
}

// issue signs a leaf certificate: a server certificate for the given
// hosts, or a client certificate for user cn in groups orgs.
func (p *clusterPKI) issue(cn string, orgs []string, hosts []string, server bool) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else if h != "" {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), encodeKey(key), nil
}

// servingHosts are the names the serving certificate must cover.
func servingHosts(advertise string) []string {
	hosts := []string{"127.0.0.1", "localhost", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if advertise != "" && !slices.Contains(hosts, advertise) {
		hosts = append(hosts, advertise)
	}
	return hosts
}

// servingCertificate loads the serving certificate from dataDir, or issues
// a new one when it is missing, expiring within a month, signed by another
// CA or not covering hosts.
func (p *clusterPKI) servingCertificate(dataDir string, hosts []string) (tls.Certificate, error) {
	certFile, keyFile := filepath.Join(dataDir, servingCertFn), filepath.Join(dataDir, servingKeyFn)
	if certPEM, err := os.ReadFile(certFile); err == nil {
		if keyPEM, err := os.ReadFile(keyFile); err == nil && p.servingCertFits(certPEM, hosts) {
			return tls.X509KeyPair(certPEM, keyPEM)
		}
	}
	certPEM, keyPEM, err := p.issue("skiff-apiserver", nil, hosts, true)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

func (p *clusterPKI) servingCertFits(certPEM []byte, hosts []string) bool {
	cert, err := parseCertPEM(certPEM)
	if err != nil || time.Until(cert.NotAfter) < 30*24*time.Hour {
		return false
	}
	if !bytes.Equal(cert.RawIssuer, p.caCert.RawSubject) || cert.CheckSignatureFrom(p.caCert) != nil {
		return false
	}
	for _, h := range hosts {
		if cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// writeFileAtomic writes through a temporary file and a rename, so a reader
// never sees half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
