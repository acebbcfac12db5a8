package policy

import (
	"testing"

	"haven"
)

// TestPermissionTableShape checks the rules the table must follow whatever
// its rows say, so that a new row cannot quietly widen what a role reaches.
func TestPermissionTableShape(t *testing.T) {
	for act, rl := range table {
		if rl.kind == "" {
			t.Errorf("%s has no resource kind", act)
		}
		if len(rl.roles) == 0 {
			t.Errorf("%s is open to no role; remove it or grant it", act)
		}
		if rl.patient && !rl.phi {
			t.Errorf("%s concerns one patient's record but is not marked PHI", act)
		}
		for role, how := range rl.roles {
			if !role.Valid() {
				t.Errorf("%s names unknown role %q", act, role)
			}
			switch {
			case how == never:
				t.Errorf("%s lists %s as never; leave it out instead", act, role)
			case role == haven.RolePatient && (how != own || !rl.patient):
				t.Errorf("%s: patients may act only on their own record", act)
			case how == own && role != haven.RolePatient:
				t.Errorf("%s: only patients have an own record", act)
			case !rl.patient && how != anyInPractice:
				t.Errorf("%s concerns no patient, so no relationship can gate it for %s", act, role)
			case how == relatedOrBreakGlass && role != haven.RoleClinician:
				t.Errorf("%s: break-glass is a clinician's emergency path, not %s's", act, role)
			case how == grantedAndRelated && role != haven.RoleStaff:
				t.Errorf("%s: the clinical grant is for staff, not %s", act, role)
			case role == haven.RolePlatformOperator && rl.phi:
				t.Errorf("%s: the platform operator sees no PHI", act)
			case role == haven.RolePracticeAdmin && rl.phi && rl.kind != KindCareTeam:
				t.Errorf("%s: the practice admin sees no PHI beyond the care-team roster", act)
			case role == haven.RoleComplianceOfficer && rl.phi:
				t.Errorf("%s: the compliance officer sees no chart content", act)
			}
		}
	}
}
