package relaypath_test

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker/natsdev"
	"github.com/nitro-cosigner/nitro-cosigner/test/goaws"
)

// closing registers b's Close with t and returns b.
func closing[B broker.Broker](t *testing.T, b B, err error) broker.Broker {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestNATS(t *testing.T) {
	srv, err := natsdev.NewEmbeddedNATS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	restart := func(t *testing.T) {
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	suite{slowEnclave: true, restartBroker: restart, be: backend{
		patience: 20 * time.Second,
		newBroker: func(t *testing.T) broker.Broker {
			b, err := broker.NewNATS(broker.NATSConfig{
				URL: srv.URL(), AckWait: 2 * time.Second, RetryDelay: 100 * time.Millisecond,
				Logger: logger(t, "nats"),
			})
			return closing(t, b, err)
		},
	}}.run(t)
}

func TestKafka(t *testing.T) {
	cluster := startKfake(t)
	suite{restartBroker: cluster.restart, be: backend{
		patience: 20 * time.Second,
		newBroker: func(t *testing.T) broker.Broker {
			b, err := broker.NewKafka(broker.KafkaConfig{
				Brokers: []string{cluster.addr()}, RetryDelay: 100 * time.Millisecond,
				Logger: logger(t, "kafka"),
			})
			return closing(t, b, err)
		},
	}}.run(t)
}

func TestSQS(t *testing.T) {
	srv := goaws.Start(t)
	suite{be: backend{
		patience: 20 * time.Second,
		newBroker: func(t *testing.T) broker.Broker {
			b, err := broker.NewSQS(broker.SQSConfig{
				Client: srv.Client(), VisibilityTimeout: 5 * time.Second, WaitTime: time.Second,
				RetryDelay: time.Second, Logger: logger(t, "sqs"),
			})
			return closing(t, b, err)
		},
	}}.run(t)
}

// kfakeCluster is a kfake cluster that can restart on the same port and
// data directory.
type kfakeCluster struct {
	dir string

	mu   sync.Mutex
	port int
	c    *kfake.Cluster
}

func startKfake(t *testing.T) *kfakeCluster {
	k := &kfakeCluster{dir: t.TempDir()}
	k.start(t)
	t.Cleanup(func() { k.c.Close() })
	return k
}

func (k *kfakeCluster) start(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(k.port), kfake.DataDir(k.dir))
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	k.port, _ = strconv.Atoi(port)
	k.c = c
}

func (k *kfakeCluster) restart(t *testing.T) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.c.Close()
	k.start(t)
}

func (k *kfakeCluster) addr() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.c.ListenAddrs()[0]
}
