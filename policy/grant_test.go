package policy_test

import (
	"testing"

	"haven"
	"haven/policy"
)

// TestOnlyTheAdminGrantsRolesAndPrivilegedOnesNeedAStepUp: every role ×
// every role: only a practice admin may grant, never a patient, the
// platform operator role, or a backend system's (no user holds it); granting an admin or compliance officer is
// decided as RoleManage (a step-up action), the rest as UserManage.
func TestOnlyTheAdminGrantsRolesAndPrivilegedOnesNeedAStepUp(t *testing.T) {
	for _, granter := range haven.Roles {
		for _, role := range haven.Roles {
			want := granter == haven.RolePracticeAdmin && role != haven.RolePatient && role != haven.RolePlatformOperator &&
				role != haven.RoleIntegration
			if got := policy.MayGrant(granter, role); got != want {
				t.Errorf("MayGrant(%s, %s) = %v, want %v", granter, role, got, want)
			}
			listed := false
			for _, r := range policy.Grantable(granter) {
				listed = listed || r == role
			}
			if listed != want {
				t.Errorf("Grantable(%s) lists %s: %v, want %v", granter, role, listed, want)
			}
		}
	}
	for role, act := range map[haven.Role]policy.Action{haven.RolePracticeAdmin: policy.RoleManage, haven.RoleComplianceOfficer: policy.RoleManage,
		haven.RoleClinician: policy.UserManage, haven.RoleStaff: policy.UserManage} {
		if got := policy.GrantAction(role); got != act || (act == policy.RoleManage) != got.Sensitivity().StepUp {
			t.Errorf("GrantAction(%s) = %s (step-up %v), want %s", role, got, got.Sensitivity().StepUp, act)
		}
	}
	// A caller cannot widen what is grantable through the returned slice.
	g := policy.Grantable(haven.RolePracticeAdmin)
	g[0] = haven.RolePlatformOperator
	if policy.MayGrant(haven.RolePracticeAdmin, haven.RolePlatformOperator) {
		t.Fatal("editing Grantable's answer changed the policy")
	}
}
