package api

import (
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

var anyRole = []Role{RoleAdmin, RoleSigner, RoleAuditor}

// methodRoles is the one authorization table: for every full method name
// the server registers, the roles that may call it (the "Roles:" line of
// each RPC's comment in proto/cosigner/v1). A method that is not here is
// denied to everyone; TestRoleTable fails when a registered method, or an
// RPC of package cosigner.v1, is missing or disagrees with its comment.
var methodRoles = map[string][]Role{
	pb.KeyService_CreateKey_FullMethodName:       {RoleAdmin},
	pb.KeyService_GetKey_FullMethodName:          anyRole,
	pb.KeyService_ListKeys_FullMethodName:        anyRole,
	pb.KeyService_DerivePublicKey_FullMethodName: anyRole,
	pb.KeyService_RefreshKey_FullMethodName:      {RoleAdmin},

	pb.SigningService_Sign_FullMethodName:             {RoleSigner},
	pb.SigningService_GetSignOperation_FullMethodName: {RoleSigner, RoleAuditor},

	pb.PolicyService_GetPolicy_FullMethodName: anyRole,
	pb.PolicyService_SetPolicy_FullMethodName: {RoleAdmin},

	pb.AuditService_ExportAudit_FullMethodName: {RoleAuditor},
	pb.AuditService_StreamAudit_FullMethodName: {RoleAuditor},

	pb.AttestationService_GetAttestation_FullMethodName: anyRole,

	pb.WorkspaceService_GetWorkspace_FullMethodName:            anyRole,
	pb.WorkspaceService_ListPairingRequests_FullMethodName:     {RoleAdmin},
	pb.WorkspaceService_ProposeWorkspaceVersion_FullMethodName: {RoleAdmin},

	healthpb.Health_Check_FullMethodName: anyRole,
	healthpb.Health_List_FullMethodName:  anyRole,
	healthpb.Health_Watch_FullMethodName: anyRole,

	reflectionpb.ServerReflection_ServerReflectionInfo_FullMethodName: anyRole,
	reflectionV1AlphaMethod: anyRole,
}

// reflectionV1AlphaMethod is the older reflection service's method, served
// for clients that know no other (its Go package is deprecated).
const reflectionV1AlphaMethod = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"

// authorized reports whether c may call the full method name.
func authorized(c Caller, method string) bool {
	roles, ok := methodRoles[method]
	return ok && c.Has(roles...)
}
