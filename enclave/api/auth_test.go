package api

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// cosignerMethods returns every RPC of package cosigner.v1, from the
// registered descriptors, by full method name.
func cosignerMethods(t testing.TB) map[string]protoreflect.MethodDescriptor {
	t.Helper()
	_ = pb.File_cosigner_v1_common_proto
	out := map[string]protoreflect.MethodDescriptor{}
	protoregistry.GlobalFiles.RangeFilesByPackage("cosigner.v1", func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			sd := f.Services().Get(i)
			for j := range sd.Methods().Len() {
				md := sd.Methods().Get(j)
				out["/"+string(sd.FullName())+"/"+string(md.Name())] = md
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatal("no cosigner.v1 methods registered")
	}
	return out
}

// documentedRoles reads the "Roles: ..." line of every RPC's comment in
// the .proto files.
func documentedRoles(t *testing.T) map[string][]Role {
	t.Helper()
	files, err := filepath.Glob("../../proto/cosigner/v1/*.proto")
	if err != nil || len(files) == 0 {
		t.Fatalf("no .proto files: %v", err)
	}
	service := regexp.MustCompile(`^service (\w+) \{`)
	rpc := regexp.MustCompile(`^rpc (\w+)\(`)
	out := map[string][]Role{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		var svc string
		var roles []Role
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if m := service.FindStringSubmatch(line); m != nil {
				svc = m[1]
			}
			if r, ok := strings.CutPrefix(line, "// Roles:"); ok {
				roles = nil
				for _, s := range strings.Split(strings.TrimSuffix(strings.TrimSpace(r), "."), ",") {
					roles = append(roles, Role(strings.TrimSpace(s)))
				}
			}
			if m := rpc.FindStringSubmatch(line); m != nil {
				out["/cosigner.v1."+svc+"/"+m[1]] = roles
				roles = nil
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestRoleTable holds the authorization table to the API: every method
// the server registers (found by asking the server, so a new service
// counts) and every RPC of package cosigner.v1 (found from the
// descriptors, so a new RPC counts) has an entry; no entry names a method
// that does not exist; and each cosigner.v1 entry grants exactly the roles
// its .proto comment names.
func TestRoleTable(t *testing.T) {
	h := start(t, nil, nil)
	registered := map[string]bool{}
	for svc, info := range h.srv.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			registered["/"+svc+"/"+m.Name] = true
		}
	}
	for m := range registered {
		if _, ok := methodRoles[m]; !ok {
			t.Errorf("%s is served but has no entry in methodRoles", m)
		}
	}
	for m := range methodRoles {
		if !registered[m] {
			t.Errorf("methodRoles names %s, which is not served", m)
		}
	}
	docs := documentedRoles(t)
	for m := range cosignerMethods(t) {
		want, ok := docs[m]
		if !ok || len(want) == 0 {
			t.Errorf("%s: no Roles line in its .proto comment", m)
			continue
		}
		got := slices.Clone(methodRoles[m])
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: methodRoles grants %v, the .proto says %v", m, got, want)
		}
	}
	if authorized(Caller{Roles: anyRole}, "/cosigner.v1.KeyService/NotAMethod") {
		t.Error("a method missing from the table is allowed")
	}
}

// invoke calls an RPC with an empty request, whatever its kind, and
// returns the first response's error.
func invoke(ctx context.Context, conn *grpc.ClientConn, name string, md protoreflect.MethodDescriptor) error {
	in, out := newMessage(md.Input()), newMessage(md.Output())
	if !md.IsStreamingServer() {
		return conn.Invoke(ctx, name, in, out)
	}
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, name)
	if err != nil {
		return err
	}
	if err := st.SendMsg(in); err != nil {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	return st.RecvMsg(out)
}

func newMessage(d protoreflect.MessageDescriptor) proto.Message {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(d.FullName())
	if err != nil {
		panic(err)
	}
	return mt.New().Interface()
}

// TestWrongRolePermissionDenied calls every RPC of every service as every
// role that may not call it: PERMISSION_DENIED, and the Node is never
// reached. The roles that may call it are not refused.
func TestWrongRolePermissionDenied(t *testing.T) {
	h := start(t, nil, nil)
	conns := map[Role]*grpc.ClientConn{RoleAdmin: h.admin(), RoleSigner: h.signer(), RoleAuditor: h.auditor()}
	for name, md := range cosignerMethods(t) {
		for role, conn := range conns {
			allowed := slices.Contains(methodRoles[name], role)
			if allowed {
				continue
			}
			t.Run(strings.TrimPrefix(name, "/cosigner.v1.")+"/"+string(role), func(t *testing.T) {
				st := wantCode(t, invoke(ctxT(t), conn, name, md), codes.PermissionDenied)
				if st.Message() != msgDenied {
					t.Errorf("message %q", st.Message())
				}
			})
		}
	}
	if n := h.node.total(); n != 0 {
		t.Errorf("the Node was called %d times for refused calls", n)
	}
	for name, md := range cosignerMethods(t) {
		for _, role := range methodRoles[name] {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := invoke(ctx, conns[role], name, md); wantNot(err, codes.PermissionDenied) {
				t.Errorf("%s as %s: %v", name, role, err)
			}
			cancel()
		}
	}
}

func wantNot(err error, code codes.Code) bool { return status.Code(err) == code }

// TestCertificateWithoutRole: a certificate from the right CA that names
// no known role is refused on every method, health included.
func TestCertificateWithoutRole(t *testing.T) {
	h := start(t, nil, nil)
	for _, roles := range [][]string{nil, {"superuser"}, {"Admin"}} {
		conn := h.dial(h.clientTLS(h.pki.issue(t, "nobody", roles...)))
		_, err := healthpb.NewHealthClient(conn).Check(ctxT(t), &healthpb.HealthCheckRequest{})
		if st := wantCode(t, err, codes.PermissionDenied); st.Message() != msgNoRole {
			t.Errorf("roles %q: message %q", roles, st.Message())
		}
		_, err = keyClient(conn).GetKey(ctxT(t), &pb.GetKeyRequest{Name: keyName(testKeyID(1))})
		wantCode(t, err, codes.PermissionDenied)
	}
	if h.node.total() != 0 {
		t.Error("the Node was called")
	}
}

// TestHandshakeRefused: no client certificate, a certificate from another
// CA, or a client limited to TLS 1.2 never get a call through.
func TestHandshakeRefused(t *testing.T) {
	h := start(t, nil, nil)
	foreign := newPKI(t, "other CA")
	noCert := h.clientTLS()
	// Go's client sends no certificate the server's CA list does not
	// accept; force it, so that the server sees and refuses it.
	foreignCert := foreign.issue(t, "admin", "admin")
	otherCA := h.clientTLS()
	otherCA.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreignCert, nil }
	tls12 := h.clientTLS(h.pki.issue(t, "admin", "admin"))
	tls12.MaxVersion = tls.VersionTLS12
	for name, tc := range map[string]*tls.Config{"no client cert": noCert, "foreign CA": otherCA, "TLS 1.2": tls12} {
		t.Run(name, func(t *testing.T) {
			conn := h.dial(tc)
			_, err := healthpb.NewHealthClient(conn).Check(ctxT(t), &healthpb.HealthCheckRequest{})
			wantCode(t, err, codes.Unavailable)
		})
	}
	if h.node.total() != 0 {
		t.Error("the Node was called")
	}
}

// TestHealthAndReflectionAnyRole: every role may check health and use
// reflection, which lists the API's services.
func TestHealthAndReflectionAnyRole(t *testing.T) {
	h := start(t, nil, nil)
	for _, conn := range []*grpc.ClientConn{h.admin(), h.signer(), h.auditor()} {
		hc := healthpb.NewHealthClient(conn)
		for _, svc := range []string{"", "cosigner.v1.SigningService"} {
			resp, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: svc})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("health %q: %v %v", svc, resp.GetStatus(), err)
			}
		}
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
		}); err != nil {
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
		for _, want := range []string{"cosigner.v1.KeyService", "cosigner.v1.SigningService", "grpc.health.v1.Health"} {
			if !slices.Contains(names, want) {
				t.Errorf("reflection lists %q, missing %s", names, want)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("reflection stream ended with %v", err)
		}
	}
}

// TestCallerReachesNode: the caller the Node sees is the one the
// certificate names.
func TestCallerReachesNode(t *testing.T) {
	h := start(t, nil, nil)
	stream, err := keyClient(h.as("ops-admin", RoleAdmin, RoleAuditor)).CreateKey(ctxT(t), createReq("idem-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recvAll(stream); err != nil {
		t.Fatal(err)
	}
	h.node.mu.Lock()
	got := h.node.lastCreate.Caller
	h.node.mu.Unlock()
	if !strings.HasPrefix(got.ID, "ops-admin/") || !slices.Equal(got.Roles, []Role{RoleAdmin, RoleAuditor}) {
		t.Errorf("caller %+v", got)
	}
}
