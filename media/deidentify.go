package media

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// A de-identified copy follows the Basic Application Level
// Confidentiality Profile of DICOM PS3.15 (Annex E, table E.1-1, its
// "Basic Profile" column), with no option that retains anything: the
// attributes below are removed (X), emptied (Z) or given a dummy value
// (D); every instance UID is replaced (U) by mapUID's answer, everywhere
// in the file, so a study's files still refer to each other; private
// attributes, curves and overlay data and comments are removed; and the
// rules apply inside every sequence. The copy says what was done
// (Patient Identity Removed, De-identification Method). Pixels are
// copied as they are: an image whose Burned In Annotation says
// identifying text is drawn into its pixels gets no copy, since the
// profile's clean-pixel option is beyond this server.
type deidAction uint8

const (
	deidKeep deidAction = iota
	deidRemove
	deidEmpty
	deidDummy
	deidUID
)

// basicProfile is table E.1-1's Basic Profile column for the attributes
// it does not keep (UIDs are handled by value, see uidAction).
var basicProfile = map[uint32]deidAction{
	// Patient.
	0x00100010: deidEmpty,  // Patient's Name
	0x00100020: deidEmpty,  // Patient ID
	0x00100021: deidRemove, // Issuer of Patient ID
	0x00100024: deidRemove, // Issuer of Patient ID Qualifiers Sequence
	0x00100030: deidEmpty,  // Patient's Birth Date
	0x00100032: deidRemove, // Patient's Birth Time
	0x00100040: deidEmpty,  // Patient's Sex
	0x00100050: deidRemove, // Patient's Insurance Plan Code Sequence
	0x00100101: deidRemove, // Patient's Primary Language Code Sequence
	0x00100102: deidRemove, // Patient's Primary Language Modifier Code Sequence
	0x00101000: deidRemove, // Other Patient IDs
	0x00101001: deidRemove, // Other Patient Names
	0x00101002: deidRemove, // Other Patient IDs Sequence
	0x00101005: deidRemove, // Patient's Birth Name
	0x00101010: deidRemove, // Patient's Age
	0x00101020: deidRemove, // Patient's Size
	0x00101021: deidRemove, // Patient's Size Code Sequence
	0x00101030: deidRemove, // Patient's Weight
	0x00101040: deidRemove, // Patient's Address
	0x00101050: deidRemove, // Insurance Plan Identification
	0x00101060: deidRemove, // Patient's Mother's Birth Name
	0x00101080: deidRemove, // Military Rank
	0x00101081: deidRemove, // Branch of Service
	0x00101090: deidRemove, // Medical Record Locator
	0x00101100: deidRemove, // Referenced Patient Photo Sequence
	0x00102000: deidRemove, // Medical Alerts
	0x00102110: deidRemove, // Allergies
	0x00102150: deidRemove, // Country of Residence
	0x00102152: deidRemove, // Region of Residence
	0x00102154: deidRemove, // Patient's Telephone Numbers
	0x00102155: deidRemove, // Patient's Telecom Information
	0x00102160: deidRemove, // Ethnic Group
	0x00102180: deidRemove, // Occupation
	0x001021A0: deidRemove, // Smoking Status
	0x001021B0: deidRemove, // Additional Patient History
	0x001021C0: deidRemove, // Pregnancy Status
	0x001021D0: deidRemove, // Last Menstrual Date
	0x001021F0: deidRemove, // Patient's Religious Preference
	0x00102203: deidRemove, // Patient's Sex Neutered
	0x00102297: deidRemove, // Responsible Person
	0x00102299: deidRemove, // Responsible Organization
	0x00104000: deidRemove, // Patient Comments
	0x00380004: deidRemove, // Referenced Patient Alias Sequence
	0x00380010: deidRemove, // Admission ID
	0x00380011: deidRemove, // Issuer of Admission ID
	0x00380014: deidRemove, // Issuer of Admission ID Sequence
	0x0038001E: deidRemove, // Scheduled Patient Institution Residence
	0x00380020: deidRemove, // Admitting Date
	0x00380021: deidRemove, // Admitting Time
	0x00380040: deidRemove, // Discharge Diagnosis Description
	0x00380044: deidRemove, // Discharge Diagnosis Code Sequence
	0x00380050: deidRemove, // Special Needs
	0x00380060: deidRemove, // Service Episode ID
	0x00380061: deidRemove, // Issuer of Service Episode ID
	0x00380062: deidRemove, // Service Episode Description
	0x00380300: deidRemove, // Current Patient Location
	0x00380400: deidRemove, // Patient's Institution Residence
	0x00380500: deidRemove, // Patient State
	0x00384000: deidRemove, // Visit Comments

	// Study, series and instance.
	0x00080012: deidRemove, // Instance Creation Date
	0x00080013: deidRemove, // Instance Creation Time
	0x00080015: deidRemove, // Instance Coercion DateTime
	0x00080020: deidEmpty,  // Study Date
	0x00080021: deidRemove, // Series Date
	0x00080022: deidRemove, // Acquisition Date
	0x00080023: deidDummy,  // Content Date
	0x00080024: deidRemove, // Overlay Date
	0x00080025: deidRemove, // Curve Date
	0x0008002A: deidRemove, // Acquisition DateTime
	0x00080030: deidEmpty,  // Study Time
	0x00080031: deidRemove, // Series Time
	0x00080032: deidRemove, // Acquisition Time
	0x00080033: deidDummy,  // Content Time
	0x00080034: deidRemove, // Overlay Time
	0x00080035: deidRemove, // Curve Time
	0x00080050: deidEmpty,  // Accession Number
	0x00080051: deidRemove, // Issuer of Accession Number Sequence
	0x00080080: deidRemove, // Institution Name
	0x00080081: deidRemove, // Institution Address
	0x00080082: deidRemove, // Institution Code Sequence
	0x00080090: deidEmpty,  // Referring Physician's Name
	0x00080092: deidRemove, // Referring Physician's Address
	0x00080094: deidRemove, // Referring Physician's Telephone Numbers
	0x00080096: deidRemove, // Referring Physician Identification Sequence
	0x0008009C: deidEmpty,  // Consulting Physician's Name
	0x0008009D: deidRemove, // Consulting Physician Identification Sequence
	0x00080201: deidRemove, // Timezone Offset From UTC
	0x00081010: deidRemove, // Station Name
	0x00081030: deidRemove, // Study Description
	0x0008103E: deidRemove, // Series Description
	0x0008103F: deidRemove, // Series Description Code Sequence
	0x00081040: deidRemove, // Institutional Department Name
	0x00081041: deidRemove, // Institutional Department Type Code Sequence
	0x00081048: deidRemove, // Physician(s) of Record
	0x00081049: deidRemove, // Physician(s) of Record Identification Sequence
	0x00081050: deidRemove, // Performing Physician's Name
	0x00081052: deidRemove, // Performing Physician Identification Sequence
	0x00081060: deidRemove, // Name of Physician(s) Reading Study
	0x00081062: deidRemove, // Physician(s) Reading Study Identification Sequence
	0x00081070: deidRemove, // Operators' Name
	0x00081072: deidRemove, // Operator Identification Sequence
	0x00081080: deidRemove, // Admitting Diagnoses Description
	0x00081084: deidRemove, // Admitting Diagnoses Code Sequence
	0x00081110: deidRemove, // Referenced Study Sequence
	0x00081111: deidRemove, // Referenced Performed Procedure Step Sequence
	0x00081120: deidRemove, // Referenced Patient Sequence
	0x00082111: deidRemove, // Derivation Description
	0x00084000: deidRemove, // Identifying Comments
	0x00200010: deidEmpty,  // Study ID
	0x00203401: deidRemove, // Modifying Device ID
	0x00203406: deidRemove, // Modified Image Description
	0x00204000: deidRemove, // Image Comments
	0x00209158: deidRemove, // Frame Comments
	0x00284000: deidRemove, // Image Presentation Comments
	0x00320012: deidRemove, // Study ID Issuer
	0x00321020: deidRemove, // Scheduled Study Location
	0x00321021: deidRemove, // Scheduled Study Location AE Title
	0x00321030: deidRemove, // Reason for Study
	0x00321031: deidRemove, // Requesting Physician Identification Sequence
	0x00321032: deidRemove, // Requesting Physician
	0x00321033: deidRemove, // Requesting Service
	0x00321034: deidRemove, // Requesting Service Code Sequence
	0x00321060: deidRemove, // Requested Procedure Description
	0x00321070: deidRemove, // Requested Contrast Agent
	0x00324000: deidRemove, // Study Comments

	// Equipment and acquisition.
	0x00180010: deidDummy,  // Contrast/Bolus Agent
	0x00181000: deidRemove, // Device Serial Number
	0x00181002: deidUID,    // Device UID
	0x00181004: deidRemove, // Plate ID
	0x00181005: deidRemove, // Generator ID
	0x00181007: deidRemove, // Cassette ID
	0x00181008: deidRemove, // Gantry ID
	0x00181030: deidRemove, // Protocol Name
	0x00181400: deidRemove, // Acquisition Device Processing Description
	0x00184000: deidRemove, // Acquisition Comments
	0x0018700A: deidRemove, // Detector ID
	0x00189424: deidRemove, // Acquisition Protocol Description
	0x0018A003: deidRemove, // Contribution Description
	0x30080105: deidRemove, // Source Serial Number
	0x300A00C3: deidRemove, // Beam Description
	0x300A00DD: deidRemove, // Bolus Description
	0x300C0113: deidRemove, // Reason for Omission Description

	// Procedure steps and requests.
	0x00400001: deidRemove, // Scheduled Station AE Title
	0x00400002: deidRemove, // Scheduled Procedure Step Start Date
	0x00400003: deidRemove, // Scheduled Procedure Step Start Time
	0x00400004: deidRemove, // Scheduled Procedure Step End Date
	0x00400005: deidRemove, // Scheduled Procedure Step End Time
	0x00400006: deidRemove, // Scheduled Performing Physician's Name
	0x00400007: deidRemove, // Scheduled Procedure Step Description
	0x00400009: deidRemove, // Scheduled Procedure Step ID
	0x0040000B: deidRemove, // Scheduled Performing Physician Identification Sequence
	0x00400010: deidRemove, // Scheduled Station Name
	0x00400011: deidRemove, // Scheduled Procedure Step Location
	0x00400012: deidRemove, // Pre-Medication
	0x00400241: deidRemove, // Performed Station AE Title
	0x00400242: deidRemove, // Performed Station Name
	0x00400243: deidRemove, // Performed Location
	0x00400244: deidRemove, // Performed Procedure Step Start Date
	0x00400245: deidRemove, // Performed Procedure Step Start Time
	0x00400250: deidRemove, // Performed Procedure Step End Date
	0x00400251: deidRemove, // Performed Procedure Step End Time
	0x00400253: deidRemove, // Performed Procedure Step ID
	0x00400254: deidRemove, // Performed Procedure Step Description
	0x00400275: deidRemove, // Request Attributes Sequence
	0x00400280: deidRemove, // Comments on the Performed Procedure Step
	0x00400555: deidRemove, // Acquisition Context Sequence
	0x00401001: deidRemove, // Requested Procedure ID
	0x00401004: deidRemove, // Patient Transport Arrangements
	0x00401005: deidRemove, // Requested Procedure Location
	0x00401010: deidRemove, // Names of Intended Recipients of Results
	0x00401011: deidRemove, // Intended Recipients of Results Identification Sequence
	0x00401101: deidRemove, // Person Identification Code Sequence
	0x00401102: deidRemove, // Person's Address
	0x00401103: deidRemove, // Person's Telephone Numbers
	0x00401104: deidRemove, // Person's Telecom Information
	0x00401400: deidRemove, // Requested Procedure Comments
	0x00402001: deidRemove, // Reason for the Imaging Service Request
	0x00402008: deidRemove, // Order Entered By
	0x00402009: deidRemove, // Order Enterer's Location
	0x00402010: deidRemove, // Order Callback Phone Number
	0x00402011: deidRemove, // Order Callback Telecom Information
	0x00402016: deidEmpty,  // Placer Order Number / Imaging Service Request
	0x00402017: deidEmpty,  // Filler Order Number / Imaging Service Request
	0x00402400: deidRemove, // Imaging Service Request Comments
	0x00403001: deidRemove, // Confidentiality Constraint on Patient Data Description
	0x00404005: deidRemove, // Scheduled Procedure Step Start DateTime
	0x00404010: deidRemove, // Scheduled Procedure Step Modification DateTime
	0x00404011: deidRemove, // Expected Completion DateTime
	0x00404025: deidRemove, // Scheduled Station Name Code Sequence
	0x00404027: deidRemove, // Scheduled Station Geographic Location Code Sequence
	0x00404028: deidRemove, // Performed Station Name Code Sequence
	0x00404030: deidRemove, // Performed Station Geographic Location Code Sequence
	0x00404034: deidRemove, // Scheduled Human Performers Sequence
	0x00404035: deidRemove, // Actual Human Performers Sequence
	0x00404036: deidRemove, // Human Performer's Organization
	0x00404037: deidRemove, // Human Performer's Name
	0x00404050: deidRemove, // Performed Procedure Step Start DateTime
	0x00404051: deidRemove, // Performed Procedure Step End DateTime
	0x00404052: deidRemove, // Procedure Step Cancellation DateTime
	0x00409009: deidRemove, // Human Performer Code Sequence

	// Structured content, observers and interpretations.
	0x0040A027: deidDummy,  // Verifying Organization
	0x0040A030: deidDummy,  // Verification DateTime
	0x0040A032: deidRemove, // Observation DateTime
	0x0040A073: deidDummy,  // Verifying Observer Sequence
	0x0040A075: deidDummy,  // Verifying Observer Name
	0x0040A078: deidRemove, // Author Observer Sequence
	0x0040A07A: deidRemove, // Participant Sequence
	0x0040A07C: deidRemove, // Custodial Organization Sequence
	0x0040A088: deidEmpty,  // Verifying Observer Identification Code Sequence
	0x0040A120: deidRemove, // DateTime
	0x0040A121: deidRemove, // Date
	0x0040A122: deidRemove, // Time
	0x0040A123: deidRemove, // Person Name
	0x0040A160: deidRemove, // Text Value
	0x0040A192: deidRemove, // Observation Date (Trial)
	0x0040A193: deidRemove, // Observation Time (Trial)
	0x0040A307: deidRemove, // Current Observer (Trial)
	0x0040A352: deidRemove, // Verbal Source (Trial)
	0x0040A353: deidRemove, // Address (Trial)
	0x0040A354: deidRemove, // Telephone Number (Trial)
	0x0040A358: deidRemove, // Verbal Source Identifier Code Sequence (Trial)
	0x0040A730: deidRemove, // Content Sequence
	0x00700001: deidRemove, // Graphic Annotation Sequence
	0x00700084: deidEmpty,  // Content Creator's Name
	0x00700086: deidRemove, // Content Creator's Identification Code Sequence
	0x00880200: deidRemove, // Icon Image Sequence
	0x00880904: deidRemove, // Topic Title
	0x00880906: deidRemove, // Topic Subject
	0x00880910: deidRemove, // Topic Author
	0x00880912: deidRemove, // Topic Keywords
	0x20300020: deidRemove, // Text String
	0x40000010: deidRemove, // Arbitrary
	0x40004000: deidRemove, // Text Comments
	0x40080042: deidRemove, // Results ID Issuer
	0x40080102: deidRemove, // Interpretation Recorder
	0x4008010A: deidRemove, // Interpretation Transcriber
	0x4008010B: deidRemove, // Interpretation Text
	0x4008010C: deidRemove, // Interpretation Author
	0x40080111: deidRemove, // Interpretation Approver Sequence
	0x40080114: deidRemove, // Physician Approving Interpretation
	0x40080115: deidRemove, // Interpretation Diagnosis Description
	0x40080118: deidRemove, // Results Distribution List Sequence
	0x40080119: deidRemove, // Distribution Name
	0x4008011A: deidRemove, // Distribution Address
	0x40080202: deidRemove, // Interpretation ID Issuer
	0x40080300: deidRemove, // Impressions
	0x40084000: deidRemove, // Results Comments

	// Clinical trials.
	0x00120020: deidDummy,  // Clinical Trial Protocol ID
	0x00120021: deidEmpty,  // Clinical Trial Protocol Name
	0x00120060: deidEmpty,  // Clinical Trial Coordinating Center Name
	0x00120081: deidDummy,  // Clinical Trial Protocol Ethics Committee Name
	0x00120082: deidRemove, // Clinical Trial Protocol Ethics Committee Approval Number

	// Signatures and what they could reveal of the original.
	0x04000100: deidRemove, // Digital Signature UID
	0x04000402: deidRemove, // Referenced Digital Signature Sequence
	0x04000403: deidRemove, // Referenced SOP Instance MAC Sequence
	0x04000404: deidRemove, // MAC
	0x04000550: deidRemove, // Modified Attributes Sequence
	0x04000561: deidRemove, // Original Attributes Sequence
	0xFFFAFFFA: deidRemove, // Digital Signatures Sequence
	0xFFFCFFFC: deidRemove, // Data Set Trailing Padding

	// What says de-identification was done is written afresh.
	0x00120062: deidRemove, // Patient Identity Removed
	0x00120063: deidRemove, // De-identification Method
	0x00120064: deidRemove, // De-identification Method Code Sequence

	// File meta information naming where the file came from.
	tagSourceAETitle: deidRemove, // Source Application Entity Title
	0x00020017:       deidRemove, // Sending Application Entity Title
	0x00020018:       deidRemove, // Receiving Application Entity Title
	0x00020100:       deidRemove, // Private Information Creator UID
	0x00020102:       deidRemove, // Private Information
}

// actionFor is what the profile does to an element.
func actionFor(t uint32) deidAction {
	group, elem := t>>16, t&0xFFFF
	switch {
	case group%2 == 1: // private
		return deidRemove
	case group&0xFF00 == 0x5000: // curve data
		return deidRemove
	case group&0xFF00 == 0x6000 && (elem == 0x3000 || elem == 0x4000): // overlay data, overlay comments
		return deidRemove
	}
	return basicProfile[t]
}

// dummies are the values D replaces by, per value representation.
var dummies = map[string]string{
	"DA": "19000101", "TM": "000000", "DT": "19000101000000", "PN": "ANONYMOUS", "AS": "000Y",
	"IS": "0", "DS": "0", "AE": "REMOVED", "CS": "REMOVED", "SH": "REMOVED", "LO": "REMOVED",
	"LT": "REMOVED", "ST": "REMOVED", "UT": "REMOVED", "UC": "REMOVED",
}

// deidentify writes the de-identified copy of a walked file, or returns
// nil and why none can be made.
func deidentify(f *dcmFile, mapUID func(string) string) ([]byte, string) {
	if strings.EqualFold(f.text(find(f.body, tagBurnedIn)), "YES") {
		return nil, "the image has identifying text drawn into its pixels, so it cannot be de-identified here"
	}
	if mapUID == nil {
		return nil, "no de-identified copy was asked for"
	}
	// The meta information: little endian, explicit, its length first.
	meta := &rewriter{f: f, bo: binary.LittleEndian, mapUID: mapUID}
	for _, e := range f.meta {
		if e.tag != tagGroupLength {
			meta.element(e)
		}
	}
	var out bytes.Buffer
	out.Write(make([]byte, 128))
	out.WriteString("DICM")
	out.Write([]byte{0x02, 0x00, 0x00, 0x00, 'U', 'L', 4, 0})
	binary.Write(&out, binary.LittleEndian, uint32(meta.out.Len()))
	out.Write(meta.out.Bytes())

	body := &rewriter{f: f, bo: f.bo, implicit: f.implicit, mapUID: mapUID}
	marked := false
	mark := func() {
		body.value(0x00120062, "CS", "YES")
		body.value(0x00120063, "LO", "DICOM PS3.15 Basic Application Level Confidentiality Profile")
		marked = true
	}
	for _, e := range f.body {
		if !marked && e.tag > 0x00120063 {
			mark()
		}
		body.element(e)
	}
	if !marked {
		mark()
	}
	out.Write(body.out.Bytes())
	// The copy must itself be a file this server reads.
	if _, err := walk(out.Bytes()); err != nil {
		return nil, "the de-identified copy could not be made"
	}
	return out.Bytes(), ""
}

// rewriter writes elements in one transfer syntax.
type rewriter struct {
	f        *dcmFile
	out      bytes.Buffer
	bo       binary.ByteOrder
	implicit bool
	mapUID   func(string) string
}

func (r *rewriter) element(e *dcmElement) {
	switch actionFor(e.tag) {
	case deidRemove:
		return
	case deidEmpty:
		r.header(e.tag, e.vr, 0)
		return
	case deidDummy:
		if v, ok := dummies[e.vr]; ok {
			r.value(e.tag, e.vr, v)
		} else {
			r.header(e.tag, e.vr, 0) // an empty sequence or number
		}
		return
	}
	switch {
	case e.vr == "SQ":
		// Sequences are written with undefined lengths, so nothing inside
		// needs counting again.
		r.header(e.tag, "SQ", undefinedLength)
		for _, it := range e.items {
			r.raw(tagItem, undefinedLength)
			for _, c := range it.elements {
				r.element(c)
			}
			r.raw(tagItemEnd, 0)
		}
		r.raw(tagSequenceEnd, 0)
	case e.vr == "UI" || actionFor(e.tag) == deidUID:
		r.value(e.tag, "UI", r.uids(r.f.text(e)))
	default:
		r.out.Write(r.f.buf[e.start:e.end])
	}
}

// uids replaces every instance UID of a (multi-valued) UI value; UIDs
// the standard defines (SOP classes, transfer syntaxes) stay.
func (r *rewriter) uids(v string) string {
	parts := strings.Split(v, `\`)
	for i, p := range parts {
		if p = strings.TrimSpace(p); p != "" && !strings.HasPrefix(p, "1.2.840.10008.") {
			parts[i] = r.mapUID(p)
		}
	}
	return strings.Join(parts, `\`)
}

// value writes an element with a text value, padded to even length.
func (r *rewriter) value(t uint32, vr, v string) {
	b := []byte(v)
	if len(b)%2 == 1 {
		pad := byte(' ')
		if vr == "UI" {
			pad = 0
		}
		b = append(b, pad)
	}
	r.header(t, vr, uint32(len(b)))
	r.out.Write(b)
}

// header writes an element's tag, VR (in explicit syntax) and length.
func (r *rewriter) header(t uint32, vr string, n uint32) {
	binary.Write(&r.out, r.bo, uint16(t>>16))
	binary.Write(&r.out, r.bo, uint16(t))
	if r.implicit {
		binary.Write(&r.out, r.bo, n)
		return
	}
	r.out.WriteString(vr)
	if longVRs[vr] {
		r.out.Write([]byte{0, 0})
		binary.Write(&r.out, r.bo, n)
		return
	}
	binary.Write(&r.out, r.bo, uint16(n))
}

// raw writes an item or delimiter: a tag and a length, no VR.
func (r *rewriter) raw(t, n uint32) {
	binary.Write(&r.out, r.bo, uint16(t>>16))
	binary.Write(&r.out, r.bo, uint16(t))
	binary.Write(&r.out, r.bo, n)
}
