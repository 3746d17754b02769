package cosignerv1_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// kind is how an RPC streams and whether it changes state.
type kind struct {
	serverStreaming bool
	mutating        bool
}

var (
	unary        = kind{}
	unaryMut     = kind{mutating: true}
	streaming    = kind{serverStreaming: true}
	streamingMut = kind{serverStreaming: true, mutating: true}
)

// api is the whole cosigner.v1 surface. Adding, removing or renaming an
// RPC, or changing whether it streams or mutates, must change this table.
var api = map[protoreflect.FullName]map[protoreflect.Name]kind{
	"cosigner.v1.KeyService": {
		"CreateKey":       streamingMut,
		"GetKey":          unary,
		"ListKeys":        unary,
		"DerivePublicKey": unary,
		"RefreshKey":      streamingMut,
	},
	"cosigner.v1.SigningService": {
		"Sign":             unaryMut,
		"GetSignOperation": unary,
	},
	"cosigner.v1.PolicyService": {
		"GetPolicy": unary,
		"SetPolicy": unaryMut,
	},
	"cosigner.v1.AuditService": {
		"ExportAudit": streaming,
		"StreamAudit": streaming,
	},
	"cosigner.v1.AttestationService": {
		"GetAttestation": unary,
	},
	"cosigner.v1.WorkspaceService": {
		"GetWorkspace":            unary,
		"ListPairingRequests":     unary,
		"ProposeWorkspaceVersion": unaryMut,
	},
}

// services returns every service registered in package cosigner.v1.
func services(t *testing.T) map[protoreflect.FullName]protoreflect.ServiceDescriptor {
	t.Helper()
	_ = cosignerv1.File_cosigner_v1_common_proto // the package registers its files
	out := map[protoreflect.FullName]protoreflect.ServiceDescriptor{}
	protoregistry.GlobalFiles.RangeFilesByPackage("cosigner.v1", func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			sd := f.Services().Get(i)
			out[sd.FullName()] = sd
		}
		return true
	})
	return out
}

func TestServicesHaveExpectedMethods(t *testing.T) {
	got := services(t)
	for name := range got {
		if _, ok := api[name]; !ok {
			t.Errorf("service %s is registered but not in the test's table", name)
		}
	}
	for name, want := range api {
		sd, ok := got[name]
		if !ok {
			t.Errorf("service %s is not registered", name)
			continue
		}
		methods := sd.Methods()
		for i := range methods.Len() {
			if _, ok := want[methods.Get(i).Name()]; !ok {
				t.Errorf("%s has unexpected method %s", name, methods.Get(i).Name())
			}
		}
		for m, k := range want {
			md := methods.ByName(m)
			if md == nil {
				t.Errorf("%s lacks method %s", name, m)
				continue
			}
			if md.IsStreamingClient() {
				t.Errorf("%s: client streaming is not part of this API", md.FullName())
			}
			if md.IsStreamingServer() != k.serverStreaming {
				t.Errorf("%s: server streaming = %v, want %v", md.FullName(), md.IsStreamingServer(), k.serverStreaming)
			}
			if mutating(md) != k.mutating {
				t.Errorf("%s: mutating (no idempotency_level = NO_SIDE_EFFECTS) = %v, want %v",
					md.FullName(), mutating(md), k.mutating)
			}
		}
	}
}

// mutating reports whether an RPC may change state: every RPC not marked
// idempotency_level = NO_SIDE_EFFECTS.
func mutating(md protoreflect.MethodDescriptor) bool {
	opts, _ := md.Options().(*descriptorpb.MethodOptions)
	return opts.GetIdempotencyLevel() != descriptorpb.MethodOptions_NO_SIDE_EFFECTS
}

// TestMutatingRequestsTakeIdempotencyKey holds the API's idempotency rule
// for every RPC, including ones added later: a mutating RPC's request has
// a singular string idempotency_key, and a read-only one has none.
func TestMutatingRequestsTakeIdempotencyKey(t *testing.T) {
	for _, sd := range services(t) {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			f := md.Input().Fields().ByName("idempotency_key")
			switch {
			case mutating(md) && f == nil:
				t.Errorf("%s changes state but %s has no idempotency_key", md.FullName(), md.Input().FullName())
			case mutating(md) && (f.Kind() != protoreflect.StringKind || f.Cardinality() == protoreflect.Repeated || f.ContainingOneof() != nil):
				t.Errorf("%s.idempotency_key must be a plain singular string", md.Input().FullName())
			case !mutating(md) && f != nil:
				t.Errorf("%s is read-only (NO_SIDE_EFFECTS) but %s has an idempotency_key", md.FullName(), md.Input().FullName())
			}
		}
	}
}

// TestServeInProcess serves every service (unimplemented) with health and
// reflection over bufconn, lists the services through reflection and calls
// one RPC of each kind.
func TestServeInProcess(t *testing.T) {
	defer goleak.VerifyNone(t)
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	cosignerv1.RegisterKeyServiceServer(srv, cosignerv1.UnimplementedKeyServiceServer{})
	cosignerv1.RegisterSigningServiceServer(srv, cosignerv1.UnimplementedSigningServiceServer{})
	cosignerv1.RegisterPolicyServiceServer(srv, cosignerv1.UnimplementedPolicyServiceServer{})
	cosignerv1.RegisterAuditServiceServer(srv, cosignerv1.UnimplementedAuditServiceServer{})
	cosignerv1.RegisterAttestationServiceServer(srv, cosignerv1.UnimplementedAttestationServiceServer{})
	cosignerv1.RegisterWorkspaceServiceServer(srv, cosignerv1.UnimplementedWorkspaceServiceServer{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	reflection.Register(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var want []string
	for name := range api {
		want = append(want, string(name))
	}
	want = append(want, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
		"grpc.reflection.v1alpha.ServerReflection")
	slices.Sort(want)
	if got := listServices(ctx, t, conn); !slices.Equal(got, want) {
		t.Errorf("reflection lists %q, want %q", got, want)
	}

	hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check: %v, %v", hr.GetStatus(), err)
	}
	_, err = cosignerv1.NewSigningServiceClient(conn).Sign(ctx, &cosignerv1.SignRequest{
		IdempotencyKey: "k",
		Payload:        &cosignerv1.SignRequest_RawDigest{RawDigest: &cosignerv1.RawDigest{Digest: make([]byte, 32)}},
	})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("Sign: %v, want Unimplemented", err)
	}
	stream, err := cosignerv1.NewKeyServiceClient(conn).CreateKey(ctx, &cosignerv1.CreateKeyRequest{IdempotencyKey: "k"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("CreateKey: %v, want Unimplemented", err)
	}
}

func listServices(ctx context.Context, t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	err = stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	slices.Sort(names)
	for name := range api {
		err := stream.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: string(name)},
		})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
			t.Errorf("reflection has no file for %s: %v", name, resp.GetErrorResponse())
		}
	}
	return names
}
