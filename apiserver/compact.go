package apiserver

import (
	"context"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// runCompactor compacts the store's history every interval, to the
// revision the store was at one interval earlier, as Kubernetes' API server
// does: watchers and paged lists get one interval of history to catch up
// in, and the store does not grow forever. Several API servers may do it
// at once; compacting an already compacted revision is harmless.
func (s *Server) runCompactor(ctx context.Context) {
	interval := s.cfg.CompactionInterval
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var prev int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.StoreRequestTimeout)
		resp, err := s.etcd.Get(rctx, "/skiff/compaction", clientv3.WithCountOnly())
		if err == nil && prev > 0 {
			_, err = s.etcd.Compact(rctx, prev)
			if err != nil && strings.Contains(err.Error(), "compacted") {
				err = nil
			}
			if err == nil {
				s.log.Debug("store history compacted", "rev", prev)
			}
		}
		cancel()
		if err != nil {
			s.log.Warn("compaction", "err", err)
			continue
		}
		prev = resp.Header.Revision
	}
}
