package broker_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker/brokertest"
)

// kfakeCluster is a kfake cluster that can restart on the same port and
// data directory.
type kfakeCluster struct {
	dir  string
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
	k.c.Close()
	k.start(t)
}

func (k *kfakeCluster) addr() string { return k.c.ListenAddrs()[0] }

func TestKafka(t *testing.T) {
	cluster := startKfake(t)
	brokertest.Run(t, brokertest.Harness{
		New: func(t *testing.T) broker.Broker {
			b, err := broker.NewKafka(broker.KafkaConfig{
				Brokers:    []string{cluster.addr()},
				RetryDelay: 200 * time.Millisecond,
				Logger:     testLogger(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Ordered: true,
		Restart: cluster.restart,
	})
}
