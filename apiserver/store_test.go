package apiserver

import (
	"testing"

	"github.com/skiffhq/skiff/api"
)

// The server's keys are package api's: other tools (etcdctl users, the
// jepsen checkers) find objects where api says they are.
func TestStorageKeysMatchPackageAPI(t *testing.T) {
	s := &Server{cfg: DefaultConfig()}
	for _, info := range api.Kinds() {
		var k Kind
		for _, kk := range (APIScheme{}).Kinds() {
			if kk.GVK() == info.GVK {
				k = kk
			}
		}
		if got, want := s.objectKey(k, "ns", "n"), info.StorageKey("ns", "n"); got != want {
			t.Errorf("%s: key %s, api says %s", info.GVK.Kind, got, want)
		}
		if got, want := s.listPrefix(k, "ns"), info.StoragePrefix("ns"); got != want {
			t.Errorf("%s: prefix %s, api says %s", info.GVK.Kind, got, want)
		}
		if got, want := s.listPrefix(k, ""), info.StoragePrefix(""); got != want {
			t.Errorf("%s: all-namespaces prefix %s, api says %s", info.GVK.Kind, got, want)
		}
	}
}
