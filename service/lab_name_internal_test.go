package service

import "testing"

// TestSplitNameKeepsFamilyParticles: an order names the patient in
// HL7's components; a chart's one-line name is cut with the family
// name's particles kept on it, and a first word always given.
func TestSplitNameKeepsFamilyParticles(t *testing.T) {
	for name, want := range map[string][2]string{
		"Maria Lopez":          {"Lopez", "Maria"},
		"Maria de la Cruz":     {"de la Cruz", "Maria"},
		"Anna Maria van Berg":  {"van Berg", "Anna Maria"},
		"Van Morrison":         {"Morrison", "Van"},
		"de Vries":             {"Vries", "de"},
		"  Cher  ":             {"Cher", ""},
		"":                     {"", ""},
		"Jean-Luc  Picard":     {"Picard", "Jean-Luc"},
		"Ahmed bin Rashid":     {"bin Rashid", "Ahmed"},
		"Ana Lucía dos Santos": {"dos Santos", "Ana Lucía"},
	} {
		if f, g := splitName(name); f != want[0] || g != want[1] {
			t.Errorf("%q: family %q given %q, want %q %q", name, f, g, want[0], want[1])
		}
	}
}
