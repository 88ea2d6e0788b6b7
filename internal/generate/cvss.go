package generate

import (
	"fmt"
	"math"
	"strings"
)

// CVSS v3.1 base metric weights (FIRST, CVSS v3.1 Specification, §7.4).
var (
	weightAV = map[byte]float64{'N': 0.85, 'A': 0.62, 'L': 0.55, 'P': 0.2}
	weightAC = map[byte]float64{'L': 0.77, 'H': 0.44}
	weightUI = map[byte]float64{'N': 0.85, 'R': 0.62}
	weightCI = map[byte]float64{'H': 0.56, 'L': 0.22, 'N': 0}
)

// weightPR depends on Scope: a privilege requirement matters less when the
// impact crosses into another component.
func weightPR(pr byte, changed bool) (float64, bool) {
	switch pr {
	case 'N':
		return 0.85, true
	case 'L':
		if changed {
			return 0.68, true
		}
		return 0.62, true
	case 'H':
		if changed {
			return 0.5, true
		}
		return 0.27, true
	}
	return 0, false
}

// baseMetrics is the order of the base metrics in a CVSS v3.1 vector.
var baseMetrics = [...]string{"AV", "AC", "PR", "UI", "S", "C", "I", "A"}

// CVSSBaseScore computes the CVSS v3.1 base score of a vector such as
// "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" (9.8) with the formula of
// the specification, including its Roundup function.
func CVSSBaseScore(vector string) (float64, error) {
	rest, ok := strings.CutPrefix(vector, "CVSS:3.1/")
	if !ok {
		return 0, fmt.Errorf("cvss vector %q: want prefix CVSS:3.1/", vector)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != len(baseMetrics) {
		return 0, fmt.Errorf("cvss vector %q: want the %d base metrics", vector, len(baseMetrics))
	}
	var v [len(baseMetrics)]byte
	for i, p := range parts {
		name, val, ok := strings.Cut(p, ":")
		if !ok || name != baseMetrics[i] || len(val) != 1 {
			return 0, fmt.Errorf("cvss vector %q: metric %d is %q, want %s:<value>", vector, i+1, p, baseMetrics[i])
		}
		v[i] = val[0]
	}
	av, okAV := weightAV[v[0]]
	ac, okAC := weightAC[v[1]]
	ui, okUI := weightUI[v[3]]
	c, okC := weightCI[v[5]]
	in, okI := weightCI[v[6]]
	a, okA := weightCI[v[7]]
	if v[4] != 'U' && v[4] != 'C' {
		return 0, fmt.Errorf("cvss vector %q: bad scope %q", vector, v[4])
	}
	changed := v[4] == 'C'
	pr, okPR := weightPR(v[2], changed)
	if !okAV || !okAC || !okPR || !okUI || !okC || !okI || !okA {
		return 0, fmt.Errorf("cvss vector %q: unknown metric value", vector)
	}

	iss := 1 - (1-c)*(1-in)*(1-a)
	var impact float64
	if changed {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	} else {
		impact = 6.42 * iss
	}
	if impact <= 0 {
		return 0, nil
	}
	exploitability := 8.22 * av * ac * pr * ui
	if changed {
		return roundUp(math.Min(1.08*(impact+exploitability), 10)), nil
	}
	return roundUp(math.Min(impact+exploitability, 10)), nil
}

// roundUp is the specification's Roundup (Appendix A): the smallest number
// with one decimal that is >= x, computed in integers so that floating-point
// noise such as 4.000000000000001 does not round up to 4.1.
func roundUp(x float64) float64 {
	i := int64(math.Round(x * 100000))
	if i%10000 == 0 {
		return float64(i) / 100000
	}
	return float64(i/10000+1) / 10
}

// Severity names the CVSS v3 qualitative rating of a base score.
func Severity(score float64) string {
	switch {
	case score == 0:
		return "None"
	case score < 4:
		return "Low"
	case score < 7:
		return "Medium"
	case score < 9:
		return "High"
	default:
		return "Critical"
	}
}
