package images

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The test images and the names they are tagged with. The docker.io aliases
// let manifests that say `busybox` or `nginx` run without a registry.
const (
	BusyboxImage = "skiff.local/busybox:latest"
	HTTPDImage   = "skiff.local/httpd:latest"

	BusyboxAlias = "docker.io/library/busybox:latest"
	NginxAlias   = "docker.io/library/nginx:latest"

	// BusyboxFile and HTTPDFile are the tarball names BuildTestImages writes.
	BusyboxFile = "skiff-busybox.tar"
	HTTPDFile   = "skiff-httpd.tar"

	// HTTPDPort is the port the HTTP image listens on unless $PORT says otherwise.
	HTTPDPort = 80
)

// DefaultBusybox is where Debian's busybox-static installs its binary.
const DefaultBusybox = "/bin/busybox"

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// httpdScript is the HTTP image's entrypoint: it writes an index page naming
// the pod (hostname) and its IP, then runs busybox httpd in the foreground
// with access logs on stderr. Arguments, when given, run instead.
const httpdScript = `#!/bin/sh
# Skiff test HTTP server (busybox httpd). Env: PORT (default 80),
# WWW_ROOT (default /var/www), MESSAGE (a line added to the page).
if [ "$#" -gt 0 ]; then exec "$@"; fi
port="${PORT:-80}"
root="${WWW_ROOT:-/var/www}"
host="$(hostname)"
ip="$(ip -4 -o addr show scope global 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')"
mkdir -p "$root" 2>/dev/null
if [ -w "$root" ]; then
	printf '<html><body><h1>skiff httpd</h1><p>hostname: %s</p><p>pod IP: %s</p><p>%s</p></body></html>\n' \
		"$host" "$ip" "${MESSAGE:-}" >"$root/index.html"
	echo ok >"$root/healthz"
fi
echo "skiff httpd: hostname=$host ip=$ip port=$port root=$root"
exec httpd -f -v -p "$port" -h "$root"
`

// infoCGI answers /cgi-bin/info with the live hostname and addresses.
const infoCGI = `#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "hostname=$(hostname)"
ip -4 -o addr show scope global | awk '{split($4, a, "/"); print "ip=" a[1]}'
`

// BusyboxLayer is a root filesystem holding busybox and a symlink in /bin
// for each of its applets, minimal /etc/passwd and /etc/group, and the usual
// empty directories.
func BusyboxLayer(busyboxPath string) (Layer, error) {
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox (install Debian's busybox-static): %w", err)
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busyboxPath, err)
	}
	dir := func(p string, mode fs.FileMode) File { return File{Path: p, Mode: fs.ModeDir | mode} }
	l := Layer{
		dir("bin", 0o755), dir("dev", 0o755), dir("etc", 0o755), dir("home", 0o755),
		dir("proc", 0o555), dir("root", 0o700), dir("sbin", 0o755), dir("sys", 0o555),
		dir("tmp", 0o777|fs.ModeSticky), dir("usr", 0o755), dir("usr/bin", 0o755),
		dir("usr/sbin", 0o755), dir("var", 0o755), dir("var/run", 0o755), dir("var/www", 0o755),
		{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\n")},
		{Path: "bin/busybox", Mode: 0o755, Data: bin},
	}
	seen := map[string]bool{"busybox": true}
	for _, name := range strings.Fields(string(out)) {
		if seen[name] || strings.Contains(name, "/") {
			continue
		}
		seen[name] = true
		l = append(l, File{Path: "bin/" + name, Mode: fs.ModeSymlink | 0o777, Link: "busybox"})
	}
	return l, nil
}

// TestImages returns the shell image and the HTTP server image built on the
// given busybox binary.
func TestImages(busyboxPath string) (shell, httpd Image, err error) {
	base, err := BusyboxLayer(busyboxPath)
	if err != nil {
		return Image{}, Image{}, err
	}
	shell = Image{
		Names:  []string{BusyboxImage, BusyboxAlias},
		Config: ocispec.ImageConfig{Env: []string{"PATH=" + defaultPath}, Cmd: []string{"sh"}},
		Layers: []Layer{base},
	}
	httpd = Image{
		Names: []string{HTTPDImage, NginxAlias},
		Config: ocispec.ImageConfig{
			Env:          []string{"PATH=" + defaultPath, fmt.Sprintf("PORT=%d", HTTPDPort)},
			Entrypoint:   []string{"/bin/sh", "/etc/skiff/httpd.sh"},
			ExposedPorts: map[string]struct{}{fmt.Sprintf("%d/tcp", HTTPDPort): {}},
			WorkingDir:   "/var/www",
		},
		Layers: []Layer{base, {
			{Path: "etc/skiff", Mode: fs.ModeDir | 0o755},
			{Path: "etc/skiff/httpd.sh", Mode: 0o755, Data: []byte(httpdScript)},
			{Path: "var/www/cgi-bin", Mode: fs.ModeDir | 0o755},
			{Path: "var/www/cgi-bin/info", Mode: 0o755, Data: []byte(infoCGI)},
		}},
	}
	return shell, httpd, nil
}

// BuildTestImages writes BusyboxFile and HTTPDFile into outDir and returns
// their paths.
func BuildTestImages(outDir, busyboxPath string) ([]string, error) {
	shell, httpd, err := TestImages(busyboxPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range []struct {
		name string
		img  Image
	}{{BusyboxFile, shell}, {HTTPDFile, httpd}} {
		var buf bytes.Buffer
		if err := WriteLayout(&buf, f.img); err != nil {
			return nil, err
		}
		p := filepath.Join(outDir, f.name)
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, p); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
