package replica

import (
	"fmt"
	"strconv"
	"strings"
)

const (
	manifestName    = "manifest.json"
	snapshotsDir    = "snapshots/"
	segmentsDir     = "segments/"
	numberWidth     = 20
	maxManifestSize = 64 << 10
	maxSegmentSize  = 64 << 20
)

func pad(n uint64) string { return fmt.Sprintf("%0*d", numberWidth, n) }

func snapshotName(gen, seq uint64) string {
	return snapshotsDir + pad(gen) + "-" + pad(seq) + ".db"
}

func segmentDir(gen uint64) string { return segmentsDir + pad(gen) + "/" }

func segmentName(gen, seq uint64) string { return segmentDir(gen) + pad(seq) }

// parseSegmentSeq parses the sequence number of a segment name inside
// segmentDir(gen); ok is false for anything else.
func parseSegmentSeq(gen uint64, name string) (uint64, bool) {
	rest, found := strings.CutPrefix(name, segmentDir(gen))
	if !found || len(rest) != numberWidth {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil
}
