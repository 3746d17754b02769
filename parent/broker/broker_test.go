package broker_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
)

func TestCheckID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"a", true},
		{"cosigner-1", true},
		{"Cosigner_2", true},
		{"0", true},
		{strings.Repeat("a", broker.MaxIDLen), true},
		{"", false},
		{strings.Repeat("a", broker.MaxIDLen+1), false},
		{"-a", false},
		{"_a", false},
		{"a.b", false},
		{"a*", false},
		{"a>", false},
		{"a b", false},
		{"a\n", false},
		{"a/b", false},
		{"a\\b", false},
		{"é", false},
		{"a\x00", false},
	} {
		err := broker.CheckID(tc.id)
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, broker.ErrInvalidID) {
			t.Errorf("CheckID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
}

// FuzzCheckID checks that an accepted ID is a single token on every
// broker: no separator, wildcard, path or space characters, and short
// enough for the longest inbox name.
func FuzzCheckID(f *testing.F) {
	for _, s := range []string{"a", "cosigner-1", "a.b", "a*>", "", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if broker.CheckID(id) != nil {
			return
		}
		if len(id) > broker.MaxIDLen || strings.ContainsAny(id, ".*> \t\r\n/\\:") {
			t.Fatalf("CheckID accepted %q", id)
		}
		for _, r := range id {
			if r > 0x7e || r < 0x21 {
				t.Fatalf("CheckID accepted %q", id)
			}
		}
	})
}

func TestConfigRefused(t *testing.T) {
	sqsClient := sqs.New(sqs.Options{Region: "us-east-1"})
	for name, newBroker := range map[string]func() error{
		"nats without URL":       func() error { _, err := broker.NewNATS(broker.NATSConfig{}); return err },
		"nats stream with a dot": func() error { _, err := broker.NewNATS(broker.NATSConfig{URL: "nats://x", Stream: "a.b"}); return err },
		"nats wildcard prefix": func() error {
			_, err := broker.NewNATS(broker.NATSConfig{URL: "nats://x", SubjectPrefix: "a.*"})
			return err
		},
		"nats empty prefix token": func() error {
			_, err := broker.NewNATS(broker.NATSConfig{URL: "nats://x", SubjectPrefix: "a..b"})
			return err
		},
		"kafka without brokers": func() error { _, err := broker.NewKafka(broker.KafkaConfig{}); return err },
		"kafka prefix with a slash": func() error {
			_, err := broker.NewKafka(broker.KafkaConfig{Brokers: []string{"x:9092"}, TopicPrefix: "a/"})
			return err
		},
		"sqs without client": func() error { _, err := broker.NewSQS(broker.SQSConfig{}); return err },
		"sqs prefix too long": func() error {
			_, err := broker.NewSQS(broker.SQSConfig{Client: sqsClient, QueuePrefix: strings.Repeat("q", 33)})
			return err
		},
		"sqs message size above 1 MiB": func() error {
			_, err := broker.NewSQS(broker.SQSConfig{Client: sqsClient, MaxMessageSize: 1<<20 + 1})
			return err
		},
		"sqs wait time above 20s": func() error {
			_, err := broker.NewSQS(broker.SQSConfig{Client: sqsClient, WaitTime: 21 * time.Second})
			return err
		},
	} {
		// Refused by validation, before anything is dialled.
		if err := newBroker(); err == nil || strings.Contains(err.Error(), "connecting") {
			t.Errorf("%s: got %v, want a configuration error", name, err)
		}
	}
}

func TestNATSUnreachable(t *testing.T) {
	if _, err := broker.NewNATS(broker.NATSConfig{URL: "nats://127.0.0.1:1"}); err == nil {
		t.Fatal("NewNATS succeeded without a server")
	}
}

func TestSQSMaxFrameSize(t *testing.T) {
	client := sqs.New(sqs.Options{Region: "us-east-1"})
	for size, want := range map[int]int{0: 786432, 1 << 20: 786432, 256 << 10: 196608, 1024: 768} {
		b, err := broker.NewSQS(broker.SQSConfig{Client: client, MaxMessageSize: size})
		if err != nil {
			t.Fatal(err)
		}
		if got := b.MaxFrameSize(); got != want {
			t.Errorf("MaxMessageSize %d: MaxFrameSize() = %d, want %d", size, got, want)
		}
	}
}
