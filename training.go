package haven

import "time"

// Workforce security training (HIPAA 164.308(a)(5)): a few short modules,
// each read and then passed with a short quiz, current for a year. A
// practice may require current training before its workforce opens any
// PHI (see PracticeSettings.TrainingRequired and policy.TrainingFacts).

// TrainingValidity is how long a passed module stays current.
const TrainingValidity = 365 * 24 * time.Hour

// TrainingModule is one module: what it teaches and its quiz. None of it
// is secret or PHI.
type TrainingModule struct {
	ID        string
	Title     string
	Summary   string   // one line, for lists
	Body      []string // the lesson, paragraph by paragraph
	Questions []TrainingQuestion
	PassMark  int // correct answers needed to pass
}

// TrainingQuestion is a multiple-choice question with one right answer.
type TrainingQuestion struct {
	Text    string
	Choices []string
	Answer  int // index into Choices
}

// TrainingCompletion is a passed module: who, which, when, and the score.
type TrainingCompletion struct {
	ID, PracticeID, UserID, Module string
	Score, Total                   int
	CompletedAt                    time.Time
}

// Expires is when the completion stops counting as current.
func (c TrainingCompletion) Expires() time.Time { return c.CompletedAt.Add(TrainingValidity) }

// Grade returns how many of answers (one index per question, -1 for none)
// are right. A wrong number of answers grades as zero.
func (m TrainingModule) Grade(answers []int) int {
	if len(answers) != len(m.Questions) {
		return 0
	}
	n := 0
	for i, q := range m.Questions {
		if answers[i] == q.Answer {
			n++
		}
	}
	return n
}

// FindTrainingModule returns the module with id, if there is one.
func FindTrainingModule(id string) (TrainingModule, bool) {
	for _, m := range TrainingModules {
		if m.ID == id {
			return m, true
		}
	}
	return TrainingModule{}, false
}

// TrainingModules are the modules every workforce member takes, in order.
var TrainingModules = []TrainingModule{
	{
		ID:      "phishing",
		Title:   "Phishing and suspicious messages",
		Summary: "Recognise a message that only pretends to come from someone you trust.",
		Body: []string{
			"Most break-ins at clinics start with an email, a text or a phone call that pretends to be from someone you trust: a colleague, a vendor, IT, a bank, a patient. It asks you to click a link, open an attachment, sign in, pay, or read out a code.",
			"Warning signs: urgency (\"today or your account is closed\"), a sender address that is almost right, a link whose real address differs from its text, an unexpected attachment, a request for a password or a sign-in code, or a request to move money or records.",
			"Haven never asks for your password or a sign-in code by email, text or phone. Every email Haven sends carries a short verification code that the person it was sent to can check in their Haven account.",
			"When in doubt, do not click. Open Haven yourself by typing its address, or call the person on a number you already have. If you clicked or typed a password, tell the compliance officer at once: minutes matter.",
		},
		Questions: []TrainingQuestion{
			{"An email says your Haven password expires today and links to a sign-in page. What do you do?",
				[]string{"Click the link and sign in quickly", "Open Haven yourself by typing its address, and report the email", "Reply asking whether it is genuine"}, 1},
			{"Which of these does Haven ask for by email?",
				[]string{"Your password", "A sign-in code from your authenticator", "Neither"}, 2},
			{"You opened an attachment and now suspect it was a trap. What now?",
				[]string{"Tell the compliance officer at once", "Wait and see whether anything happens", "Delete the email so nobody knows"}, 0},
		},
		PassMark: 3,
	},
	{
		ID:      "passwords",
		Title:   "Passwords and second factors",
		Summary: "One long, unique password per account, and a second factor on all of them.",
		Body: []string{
			"A password stolen from one website is tried on every other: use a different password for Haven than for anything else. A password manager makes that easy and also refuses to fill your password into a fake site.",
			"Long beats clever: four or five unrelated words are stronger and easier to remember than a short password full of symbols.",
			"Haven requires a second factor (an authenticator app or a security key) for everyone who works with patient records. A security key or passkey cannot be phished; an authenticator code can be, if you type it into a fake page.",
			"Never share your account, your password or a code, not even with a colleague or IT. Each person signs in as themselves so that the record of who opened what is true.",
		},
		Questions: []TrainingQuestion{
			{"Is it fine to use your Haven password on another website if it is strong?",
				[]string{"Yes, if it is long enough", "No: every account gets its own password", "Only for work websites"}, 1},
			{"A colleague has forgotten their password and asks to use your session. What do you do?",
				[]string{"Let them, just this once", "Refuse: they reset their own password", "Tell them your password so they can sign in on their computer"}, 1},
			{"Which second factor cannot be phished by a fake sign-in page?",
				[]string{"A security key or passkey", "A code read out over the phone", "A code from an authenticator app"}, 0},
		},
		PassMark: 3,
	},
	{
		ID:      "devices",
		Title:   "Devices and networks",
		Summary: "Locked, updated devices; a VPN or a trusted network; nothing left open.",
		Body: []string{
			"Use Haven only on devices that are updated (system and browser), have a screen lock, and are not shared with people outside the practice.",
			"Use a VPN or a trusted network. A clinic network or your own home network is trusted; public Wi-Fi (cafés, hotels, airports) is not, unless you connect through the practice's VPN first.",
			"Lock the screen whenever you step away, even for a moment. Haven signs you out after a short idle time, but a screen left open in between shows whatever was on it.",
			"Never save patient records to a personal device, a USB stick or a personal cloud account, and never photograph a screen. If a device that had Haven on it is lost or stolen, tell the compliance officer at once so its sessions can be ended.",
		},
		Questions: []TrainingQuestion{
			{"You need to check a result from a café's free Wi-Fi. What do you do?",
				[]string{"Connect through the practice's VPN first, or wait for a trusted network", "Go ahead: Haven uses HTTPS", "Use the café's computer instead"}, 0},
			{"You step away from your computer for two minutes. What do you do?",
				[]string{"Nothing: Haven will sign me out eventually", "Lock the screen", "Turn the monitor off"}, 1},
			{"Your laptop with Haven open in the browser is stolen. What now?",
				[]string{"Buy a new one", "Tell the compliance officer at once", "Change the laptop's wallpaper remotely"}, 1},
		},
		PassMark: 3,
	},
	{
		ID:      "incidents",
		Title:   "Reporting incidents",
		Summary: "What to report, to whom, and why sooner is always better.",
		Body: []string{
			"An incident is anything that may have exposed patient information or an account: a lost device, a wrong recipient, a clicked link, a password typed into the wrong page, a record opened without need, a stranger asking questions.",
			"Report it to the compliance officer at once, even if you are not sure, and even if it was your own mistake. The law gives the practice a limited time to assess a breach and notify patients; that time starts when anyone in the practice knew.",
			"Say what happened, when, and what you have already done. Do not try to investigate on your own, delete evidence, or contact the people affected: the compliance officer does that.",
			"Reporting is never punished. Hiding an incident makes it worse for everyone, the patients above all.",
		},
		Questions: []TrainingQuestion{
			{"You sent a patient's message to the wrong patient. What do you do?",
				[]string{"Ask the other patient to delete it and say nothing", "Report it to the compliance officer at once", "Wait to see whether anyone complains"}, 1},
			{"You are not sure whether something counts as an incident. Should you report it?",
				[]string{"Yes", "No, only certain incidents are reported", "Only if a patient complains"}, 0},
			{"Who contacts the patients affected by an incident?",
				[]string{"Whoever caused it", "The compliance officer", "Nobody"}, 1},
		},
		PassMark: 3,
	},
}
