package replica

import "testing"

// FuzzParseSegmentSeq: segment names come from an S3 listing, which the
// host controls. A name parses only if it is exactly the name the replica
// writes for that generation and number.
func FuzzParseSegmentSeq(f *testing.F) {
	f.Add(uint64(1), segmentName(1, 7))
	f.Add(uint64(2), segmentName(1, 7))
	f.Add(uint64(1), segmentName(1, 1<<63))
	f.Add(uint64(1), segmentDir(1)+"+0000000000000000007")
	f.Add(uint64(1), segmentDir(1)+"99999999999999999999")
	f.Fuzz(func(t *testing.T, gen uint64, name string) {
		seq, ok := parseSegmentSeq(gen, name)
		if ok && segmentName(gen, seq) != name {
			t.Fatalf("%q parsed as %d, which is named %q", name, seq, segmentName(gen, seq))
		}
	})
}
