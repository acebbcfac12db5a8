package web_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"haven"
	"haven/internal/testkit"
	"haven/media/mediatest"
)

// TestFilePagesRefuseOthersFiles: the file pages, as the patient and the
// clinician of each practice, with the other practice's ids and (for
// both) those of a patient of their own practice they have no
// relationship with: the gallery, a file's page and an upload into
// another's gallery are all refused, show none of the other side's PHI,
// and add nothing to the other's record.
func TestFilePagesRefuseOthersFiles(t *testing.T) {
	for name, dsn := range testkit.Databases(t) {
		t.Run(name, func(t *testing.T) {
			st, ts := newChartStack(t, dsn)
			for i, own := range ts {
				other := ts[1-i]
				_, secret := st.client(firefox).apiSignIn(own.emails[haven.RoleClinician])
				doc := st.client(firefox)
				doc.signIn(own.emails[haven.RoleClinician], secret)
				pat := st.client(firefox)
				expectRedirect(t, pat.post("/login", url.Values{"email": {own.pEmail[0]}, "password": {stackPassword}}), "/app")
				for who, c := range map[string]*client{"clinician": doc, "patient": pat} {
					for _, tg := range []struct {
						tn *tenant
						j  int
					}{{other, 0}, {other, 1}, {own, 1}} {
						for _, path := range []string{"/app/files/" + tg.tn.files[tg.j], "/app/patients/" + tg.tn.patient[tg.j] + "/files"} {
							r := c.get(path)
							body := readAll(t, r)
							if r.StatusCode != http.StatusForbidden && r.StatusCode != http.StatusNotFound {
								t.Errorf("%s of %s: GET %s answered %d", who, own.id, path, r.StatusCode)
							}
							if strings.Contains(body, tg.tn.marker) {
								t.Errorf("%s: GET %s shows the other side's PHI", who, path)
							}
						}
						var form bytes.Buffer
						mw := multipart.NewWriter(&form)
						fw, _ := mw.CreateFormFile("file", "planted.jpg")
						fw.Write(mediatest.JPEG(mediatest.Pattern(8, 8), mediatest.PhotoMarkers{}))
						mw.Close()
						path := "/app/patients/" + tg.tn.patient[tg.j] + "/files"
						r := c.do("POST", path, &form, map[string]string{"Content-Type": mw.FormDataContentType(), "Sec-Fetch-Site": "same-origin", "Origin": st.base})
						if r.StatusCode != http.StatusForbidden && r.StatusCode != http.StatusNotFound {
							t.Errorf("%s of %s: POST %s answered %d", who, own.id, path, r.StatusCode)
						}
					}
				}
			}
			// Nothing was planted: each patient still has the one file seeded.
			for _, tn := range ts {
				for j := range 2 {
					var n int
					if err := st.db.SQL().QueryRow(`SELECT COUNT(*) FROM files WHERE patient_id = $1`, tn.patient[j]).Scan(&n); err != nil || n != 1 {
						t.Errorf("patient %d of %s has %d files (%v), want 1", j, tn.id, n, err)
					}
				}
			}
		})
	}
}
