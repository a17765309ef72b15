package client

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// ConfigEnv names the environment variable that overrides the config path.
const ConfigEnv = "SKIFFCONFIG"

// Config is the client configuration file, shaped like a kubeconfig: named
// clusters (where and which CA), users (client certificate or token) and
// contexts (a cluster, a user and a default namespace), one of them current.
type Config struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []NamedCluster `json:"clusters"`
	Users          []NamedUser    `json:"users"`
	Contexts       []NamedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
}

// NamedCluster is a cluster entry.
type NamedCluster struct {
	Name    string  `json:"name"`
	Cluster Cluster `json:"cluster"`
}

// Cluster says where an API server is and which CA signs its certificate.
type Cluster struct {
	Server                   string `json:"server"`
	CertificateAuthorityData []byte `json:"certificate-authority-data,omitempty"`
	// TLSServerName overrides the name checked in the server certificate.
	TLSServerName string `json:"tls-server-name,omitempty"`
}

// NamedUser is a user entry.
type NamedUser struct {
	Name string   `json:"name"`
	User AuthInfo `json:"user"`
}

// AuthInfo holds a user's credentials: a client certificate and key, or a
// bearer token.
type AuthInfo struct {
	ClientCertificateData []byte `json:"client-certificate-data,omitempty"`
	ClientKeyData         []byte `json:"client-key-data,omitempty"`
	Token                 string `json:"token,omitempty"`
}

// NamedContext is a context entry.
type NamedContext struct {
	Name    string  `json:"name"`
	Context Context `json:"context"`
}

// Context binds a cluster, a user and a default namespace.
type Context struct {
	Cluster   string `json:"cluster"`
	User      string `json:"user"`
	Namespace string `json:"namespace,omitempty"`
}

// ConfigPath is the config file to use: explicit if set, else
// $SKIFFCONFIG, else ~/.skiff/config.
func ConfigPath(explicit string) string {
	if explicit != "" {
		return explicit
	}
	if p := os.Getenv(ConfigEnv); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/root"
	}
	return filepath.Join(home, ".skiff", "config")
}

// LoadConfig reads a config file. A missing file is an error wrapping
// os.ErrNotExist.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading client config: %w", err)
	}
	c := &Config{}
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return nil, fmt.Errorf("client config %s: %w", path, err)
	}
	return c, nil
}

// Save writes the config with mode 0600, creating its directory.
func (c *Config) Save(path string) error {
	if c.APIVersion == "" {
		c.APIVersion = "v1"
	}
	if c.Kind == "" {
		c.Kind = "Config"
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// SetCluster adds or replaces a cluster entry.
func (c *Config) SetCluster(name string, cl Cluster) {
	for i := range c.Clusters {
		if c.Clusters[i].Name == name {
			c.Clusters[i].Cluster = cl
			return
		}
	}
	c.Clusters = append(c.Clusters, NamedCluster{Name: name, Cluster: cl})
}

// SetUser adds or replaces a user entry.
func (c *Config) SetUser(name string, u AuthInfo) {
	for i := range c.Users {
		if c.Users[i].Name == name {
			c.Users[i].User = u
			return
		}
	}
	c.Users = append(c.Users, NamedUser{Name: name, User: u})
}

// SetContext adds or replaces a context entry.
func (c *Config) SetContext(name string, ctx Context) {
	for i := range c.Contexts {
		if c.Contexts[i].Name == name {
			c.Contexts[i].Context = ctx
			return
		}
	}
	c.Contexts = append(c.Contexts, NamedContext{Name: name, Context: ctx})
}

// ErrNoContext is returned when the config names no usable context.
var ErrNoContext = errors.New("no context: set current-context or pass --context")

// Resolve returns the cluster, user and context for contextName (the
// current context when empty).
func (c *Config) Resolve(contextName string) (Cluster, AuthInfo, Context, error) {
	if contextName == "" {
		contextName = c.CurrentContext
	}
	if contextName == "" {
		return Cluster{}, AuthInfo{}, Context{}, ErrNoContext
	}
	var ctx *Context
	for i := range c.Contexts {
		if c.Contexts[i].Name == contextName {
			ctx = &c.Contexts[i].Context
		}
	}
	if ctx == nil {
		return Cluster{}, AuthInfo{}, Context{}, fmt.Errorf("context %q not found in the client config", contextName)
	}
	var cl *Cluster
	for i := range c.Clusters {
		if c.Clusters[i].Name == ctx.Cluster {
			cl = &c.Clusters[i].Cluster
		}
	}
	if cl == nil {
		return Cluster{}, AuthInfo{}, Context{}, fmt.Errorf("cluster %q of context %q not found", ctx.Cluster, contextName)
	}
	var u AuthInfo
	found := ctx.User == ""
	for i := range c.Users {
		if c.Users[i].Name == ctx.User {
			u, found = c.Users[i].User, true
		}
	}
	if !found {
		return Cluster{}, AuthInfo{}, Context{}, fmt.Errorf("user %q of context %q not found", ctx.User, contextName)
	}
	return *cl, u, *ctx, nil
}
