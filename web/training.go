package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"haven"
	"haven/policy"
	"haven/service"
)

// Workforce security training (service/training.go): each member's own
// page lists the modules and their state; a module's page is its lesson
// and quiz; the administrator and the compliance officer see who is due,
// by name. A member refused a record because their training lapsed is
// sent here by the refusal's page (pageError).

// trainingLapsed reports whether err is policy's refusal for lapsed
// training, which no break-glass or relationship overcomes: its page
// links to the training instead.
func trainingLapsed(err error) bool {
	return haven.ErrorCode(err) == haven.EFORBIDDEN && strings.Contains(haven.ErrorMessage(err), policy.TrainingPage)
}

// trainingView is the member's own training page.
type trainingView struct {
	Status    *service.TrainingStatus
	CanReport bool
}

func (s *Server) pageTraining(w http.ResponseWriter, r *http.Request) {
	st, err := s.svc.MyTraining(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	a, _ := haven.ActorFromContext(r.Context())
	p := s.newPage(r, "Security training")
	if r.URL.Query().Get("done") == "passed" {
		p.Flash = "Passed. The module is current for a year."
	}
	p.Data = trainingView{Status: st, CanReport: policy.Permits(a.Role, policy.TrainingReport)}
	s.render(w, r, http.StatusOK, "training.html", p)
}

// trainingModuleView is one module's lesson and quiz, and the result of an
// attempt.
type trainingModuleView struct {
	Module    haven.TrainingModule
	Result    *service.TrainingResult
	Questions []quizQuestion
}

// quizQuestion is a question as the form shows it, with what was chosen
// on a failed attempt kept.
type quizQuestion struct {
	N       int // 0-based, the form field is q<N>
	Text    string
	Choices []quizChoice
	Wrong   bool
}

type quizChoice struct {
	N       int
	Text    string
	Checked bool
}

// quizOf builds m's quiz, with answers (nil: none yet) chosen and wrong
// marked.
func quizOf(m haven.TrainingModule, answers []int, wrong []int) []quizQuestion {
	out := make([]quizQuestion, len(m.Questions))
	for i, q := range m.Questions {
		out[i] = quizQuestion{N: i, Text: q.Text}
		for j, c := range q.Choices {
			out[i].Choices = append(out[i].Choices, quizChoice{N: j, Text: c, Checked: i < len(answers) && answers[i] == j})
		}
	}
	for _, i := range wrong {
		out[i].Wrong = true
	}
	return out
}

func (s *Server) pageTrainingModule(w http.ResponseWriter, r *http.Request) {
	m, ok := haven.FindTrainingModule(r.PathValue("module"))
	if !ok {
		s.pageError(w, r, haven.Errorf(haven.ENOTFOUND, "no such training module"))
		return
	}
	// The member's own page decides (and audits) who may take training.
	if _, err := s.svc.MyTraining(r.Context()); err != nil {
		s.pageError(w, r, err)
		return
	}
	p := s.newPage(r, m.Title)
	p.Data = trainingModuleView{Module: m, Questions: quizOf(m, nil, nil)}
	s.render(w, r, http.StatusOK, "training_module.html", p)
}

func (s *Server) pageTakeTraining(w http.ResponseWriter, r *http.Request) {
	m, ok := haven.FindTrainingModule(r.PathValue("module"))
	if !ok {
		s.pageError(w, r, haven.Errorf(haven.ENOTFOUND, "no such training module"))
		return
	}
	answers := make([]int, len(m.Questions))
	missing := false
	for i := range m.Questions {
		v, err := strconv.Atoi(r.PostFormValue("q" + strconv.Itoa(i)))
		if err != nil {
			v, missing = -1, true
		}
		answers[i] = v
	}
	p := s.newPage(r, m.Title)
	if missing {
		p.Error = "Answer every question, then send the quiz."
		p.Data = trainingModuleView{Module: m, Questions: quizOf(m, answers, nil)}
		s.render(w, r, http.StatusBadRequest, "training_module.html", p)
		return
	}
	res, err := s.svc.TakeTraining(r.Context(), m.ID, answers)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if res.Passed {
		http.Redirect(w, r, "/app/training?done=passed", http.StatusSeeOther)
		return
	}
	v := trainingModuleView{Module: m, Result: res, Questions: quizOf(m, answers, res.Wrong)}
	p.Error = "Not passed: " + strconv.Itoa(res.Score) + " of " + strconv.Itoa(res.Total) + " right, " +
		strconv.Itoa(m.PassMark) + " needed. Read the marked questions again and try once more."
	p.Data = v
	s.render(w, r, http.StatusOK, "training_module.html", p)
}

// trainingReportView is who is due, for the administrator.
type trainingReportView struct {
	Rows              []service.TrainingStatus
	Overdue, Due, Cur int
	Required          bool
	GraceDays         int
}

func (s *Server) pageTrainingReport(w http.ResponseWriter, r *http.Request) {
	rows, err := s.svc.TrainingReport(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := trainingReportView{Rows: rows}
	for _, st := range rows {
		switch st.State {
		case service.TrainingOverdue:
			v.Overdue++
		case service.TrainingDue:
			v.Due++
		default:
			v.Cur++
		}
		v.Required, v.GraceDays = st.Required, int(st.Grace/(24*time.Hour))
	}
	p := s.newPage(r, "Who is due for training")
	p.Data = v
	s.render(w, r, http.StatusOK, "training_report.html", p)
}

// trainingJSON is a member's training in the API.
func trainingJSON(st service.TrainingStatus) map[string]any {
	mods := make([]map[string]any, 0, len(st.Modules))
	for _, m := range st.Modules {
		mj := map[string]any{"module": m.Module.ID, "title": m.Module.Title, "state": m.State}
		if !m.Completed.IsZero() {
			mj["completed_at"], mj["expires_at"] = m.Completed, m.Expires
		}
		mods = append(mods, mj)
	}
	out := map[string]any{"user_id": st.UserID, "role": st.Role, "state": st.State, "current_until": st.CurrentUntil,
		"required": st.Required, "grace_days": int(st.Grace / (24 * time.Hour)), "blocked": st.Blocked, "modules": mods}
	if st.Name != "" {
		out["name"] = st.Name
	}
	return out
}

func (s *Server) apiTraining(w http.ResponseWriter, r *http.Request) {
	st, err := s.svc.MyTraining(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, trainingJSON(*st))
}

func (s *Server) apiTakeTraining(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Answers []int `json:"answers"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	res, err := s.svc.TakeTraining(r.Context(), r.PathValue("module"), body.Answers)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := map[string]any{"module": res.Module.ID, "score": res.Score, "total": res.Total, "pass_mark": res.Module.PassMark,
		"passed": res.Passed, "wrong": res.Wrong}
	if res.Wrong == nil {
		out["wrong"] = []int{}
	}
	if res.Passed {
		out["expires_at"] = res.Expires
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiTrainingReport(w http.ResponseWriter, r *http.Request) {
	rows, err := s.svc.TrainingReport(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(rows))
	for _, st := range rows {
		out = append(out, trainingJSON(st))
	}
	writeJSON(w, http.StatusOK, map[string]any{"people": out})
}
