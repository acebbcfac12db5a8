package policy

import "haven"

// Granting a role is how an account gets its power, so which roles a
// member may hand out is policy's to say, like any other access, and
// pages offer only what this allows.
//
// A practice admin brings in the practice's workforce, other admins
// included. Patients are never invited into a role: they are registered
// with a chart (or register themselves), so that an account cannot exist
// as a patient of nobody. The platform operator role is never granted from
// inside a practice; operators are made with the command line on the
// server.
var grantable = map[haven.Role][]haven.Role{
	haven.RolePracticeAdmin: {haven.RoleClinician, haven.RoleStaff, haven.RoleComplianceOfficer, haven.RolePracticeAdmin},
}

// Grantable returns the roles granter may give someone, in the order pages
// show them; none for every role but the practice admin.
func Grantable(granter haven.Role) []haven.Role {
	return append([]haven.Role(nil), grantable[granter]...)
}

// MayGrant reports whether granter may give someone role.
func MayGrant(granter, role haven.Role) bool {
	for _, r := range grantable[granter] {
		if r == role {
			return true
		}
	}
	return false
}

// GrantAction is the action to decide before granting role. Roles that
// themselves manage people or oversee the practice (admin, compliance
// officer) are a role change in all but name, so granting them is
// RoleManage, which needs a fresh authentication: a session left open
// must not be able to mint another administrator. Other workforce roles
// are UserManage.
func GrantAction(role haven.Role) Action {
	switch role {
	case haven.RolePracticeAdmin, haven.RoleComplianceOfficer:
		return RoleManage
	}
	return UserManage
}
