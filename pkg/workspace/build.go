package workspace

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"slices"
)

// Edits build the next version of a document: each returns the draft
// from Doc.Next with one change, normalized and validated, so that two
// admins who make the same change from the same version get the same
// bytes (and their approvals count together).

// NewDoc builds version 1 of a workspace.
func NewDoc(id string, members []Member, admins []crypto.PublicKey, quorum int, users []User) (*Doc, []byte, error) {
	keys, err := adminKeys(admins)
	if err != nil {
		return nil, nil, err
	}
	return finish(&Doc{Workspace: id, Version: 1, Members: members, Admins: keys, Quorum: quorum, Users: users})
}

// adminKeys encodes admin public keys as a document lists them.
func adminKeys(admins []crypto.PublicKey) ([]string, error) {
	out := make([]string, 0, len(admins))
	for _, k := range admins {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("%w: admin key: %v", ErrMalformed, err)
		}
		out = append(out, base64.StdEncoding.EncodeToString(der))
	}
	return out, nil
}

// NewUser makes a user entry from a public key (a client certificate's).
func NewUser(name string, roles []string, pub crypto.PublicKey, signers []string) (User, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return User{}, fmt.Errorf("%w: user key: %v", ErrMalformed, err)
	}
	return User{Name: name, Roles: slices.Clone(roles), PublicKey: base64.StdEncoding.EncodeToString(der), Signers: slices.Clone(signers)}, nil
}

// AddMember adds a cosigner whose pairing request was verified, and marks
// its token used.
func AddMember(v *Version, m Member) (*Doc, []byte, error) {
	if m.Token == "" {
		return nil, nil, fmt.Errorf("%w: a member joins with a pairing token", ErrMalformed)
	}
	if v.Doc.Member(m.ID) != nil {
		return nil, nil, fmt.Errorf("%w: cosigner %s is already a member", ErrMalformed, m.ID)
	}
	d := v.Doc.Next(v.Signed.Doc)
	d.Members = append(d.Members, m)
	d.Tokens = append(d.Tokens, m.Token)
	return finish(d)
}

// RemoveMember removes a cosigner: its frames are refused from this
// version on.
func RemoveMember(v *Version, id string) (*Doc, []byte, error) {
	if v.Doc.Member(id) == nil {
		return nil, nil, fmt.Errorf("%w: cosigner %s is not a member", ErrMalformed, id)
	}
	d := v.Doc.Next(v.Signed.Doc)
	d.Members = slices.DeleteFunc(d.Members, func(m Member) bool { return m.ID == id })
	return finish(d)
}

// PutUser adds users, or replaces those of the same names.
func PutUser(v *Version, users ...User) (*Doc, []byte, error) {
	d := v.Doc.Next(v.Signed.Doc)
	for _, u := range users {
		d.Users = slices.DeleteFunc(d.Users, func(x User) bool { return x.Name == u.Name })
		d.Users = append(d.Users, u)
	}
	return finish(d)
}

// RevokeUser removes a user (and its name from every user's Signers): its
// calls are refused from this version on, on every member.
func RevokeUser(v *Version, name string) (*Doc, []byte, error) {
	if v.Doc.User(name) == nil {
		return nil, nil, fmt.Errorf("%w: no user %s", ErrMalformed, name)
	}
	d := v.Doc.Next(v.Signed.Doc)
	d.Users = slices.DeleteFunc(d.Users, func(x User) bool { return x.Name == name })
	for i := range d.Users {
		d.Users[i].Signers = slices.DeleteFunc(d.Users[i].Signers, func(s string) bool { return s == name })
	}
	return finish(d)
}

// SetPolicy makes doc the workspace's signing policy (its validity is the
// members' to check: enclave/policy).
func SetPolicy(v *Version, doc []byte) (*Doc, []byte, error) {
	if len(doc) == 0 {
		return nil, nil, fmt.Errorf("%w: empty policy document", ErrMalformed)
	}
	d := v.Doc.Next(v.Signed.Doc)
	d.Policy = slices.Clone(doc)
	return finish(d)
}

// SetAdmins replaces the admin keys and quorum (approved by the old
// quorum, like every change).
func SetAdmins(v *Version, admins []crypto.PublicKey, quorum int) (*Doc, []byte, error) {
	keys, err := adminKeys(admins)
	if err != nil {
		return nil, nil, err
	}
	d := v.Doc.Next(v.Signed.Doc)
	d.Admins, d.Quorum = keys, quorum
	return finish(d)
}

func finish(d *Doc) (*Doc, []byte, error) {
	d.Normalize()
	if err := d.Validate(); err != nil {
		return nil, nil, err
	}
	raw, err := d.Encode()
	if err != nil {
		return nil, nil, err
	}
	return d, raw, nil
}
