package marksign

import (
	"strings"
	"time"
)

// countryCallingCodes maps supported countries to their calling codes.
var countryCallingCodes = map[string]string{"EE": "+372", "LT": "+370"}

// normalizePhone returns phone in E.164 form and its country, or ok false.
// Spaces, dashes, dots and parentheses are dropped and a leading 00 is read
// as +, because people type numbers the way they see them printed.
//
// EE numbers are 7 or 8 digits after +372 (mobile ones start with 5, but
// Mobile-ID test numbers start with 0 or 6, so the first digit is not
// checked); LT mobile numbers are 8 digits after +370 and start with 6.
func normalizePhone(phone string) (e164, country string, ok bool) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(phone) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", "", false
		}
	}
	p := b.String()
	if strings.HasPrefix(p, "00") {
		p = "+" + p[2:]
	}
	switch {
	case strings.HasPrefix(p, "+372"):
		rest := p[4:]
		if len(rest) == 7 || len(rest) == 8 {
			return p, "EE", true
		}
	case strings.HasPrefix(p, "+370"):
		rest := p[4:]
		if len(rest) == 8 && rest[0] == '6' {
			return p, "LT", true
		}
	}
	return "", "", false
}

// validPersonalCode checks an Estonian or Lithuanian personal code: 11
// digits G YYMMDD NNN C, a century-and-sex digit 1–6, a real date and the
// shared modulo-11 check digit.
func validPersonalCode(code string) bool {
	if len(code) != 11 {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	if _, ok := birthdate(code); !ok {
		return false
	}
	return checkDigit(code[:10]) == int(code[10]-'0')
}

// checkDigit is the modulo-11 check of EE and LT personal codes: weights
// 1..9,1; if the remainder is 10, weights 3..9,1,2,3; if again 10, 0.
func checkDigit(ten string) int {
	sum := func(w []int) int {
		s := 0
		for i, wi := range w {
			s += int(ten[i]-'0') * wi
		}
		return s % 11
	}
	if r := sum([]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 1}); r != 10 {
		return r
	}
	if r := sum([]int{3, 4, 5, 6, 7, 8, 9, 1, 2, 3}); r != 10 {
		return r
	}
	return 0
}

// birthdate reads the date of birth from a personal code
// (docs/providers/marksign_mobileid.md, "Identity claims").
func birthdate(code string) (time.Time, bool) {
	if len(code) < 7 {
		return time.Time{}, false
	}
	var century string
	switch code[0] {
	case '1', '2':
		century = "18"
	case '3', '4':
		century = "19"
	case '5', '6':
		century = "20"
	default:
		return time.Time{}, false
	}
	t, err := time.Parse("20060102", century+code[1:7])
	return t, err == nil
}

// gender reads the sex digit of a personal code: odd is male.
func gender(code string) string {
	if len(code) == 0 || code[0] < '1' || code[0] > '6' {
		return ""
	}
	if (code[0]-'0')%2 == 1 {
		return "male"
	}
	return "female"
}
