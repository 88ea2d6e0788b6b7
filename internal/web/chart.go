package web

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/verify"
)

// The time chart of the Logs page: drawn on the server as inline SVG (the
// template "chart"), so there is no script or library to load, and it is
// tested like any other output. A result gets a chart when it has a
// datetime column and a number column, such as
// summarize count() by bin(TimeGenerated, 5m); a string column, when there
// is one, splits it into series (summarize count() by bin(...), Severity).

const (
	chartW, chartH  = 760, 260
	chartLeft       = 56
	chartRight      = 16
	chartTop        = 14
	chartBottom     = 34
	chartMaxSeries  = 6
	chartMaxDots    = 120 // points per series drawn as dots too
	chartYTickCount = 5
)

// chartView is what the template draws; coordinates are in the viewBox.
type chartView struct {
	W, H              int
	Left, Right       float64 // the plot area
	Top, Bottom       float64
	Series            []chartSeries
	YTicks, XTicks    []chartTick
	TimeCol, ValueCol string
	SplitCol          string
	Hidden            int // series not drawn (more than chartMaxSeries)
	Label             string
}

type chartSeries struct {
	Name   string
	Class  string // s0 … s5: the colour, from style.css
	Points string // the polyline
	Dots   []chartDot
}

type chartDot struct {
	X, Y  float64
	Title string
}

type chartTick struct {
	Pos   float64
	Label string
}

type chartPoint struct {
	t time.Time
	v float64
}

// buildChart returns the chart of a result, or nil when it has none.
func buildChart(cols []verify.Column, rows [][]any) *chartView {
	ti, vi, si := -1, -1, -1
	for i, c := range cols {
		switch {
		case c.Type == dcr.TypeDatetime && ti < 0:
			ti = i
		case isNumberType(c.Type) && vi < 0:
			vi = i
		case c.Type == dcr.TypeString && si < 0:
			si = i
		}
	}
	if ti < 0 || vi < 0 || len(rows) == 0 {
		return nil
	}
	series := map[string][]chartPoint{}
	totals := map[string]float64{}
	for _, r := range rows {
		if len(r) != len(cols) {
			continue
		}
		t, ok1 := timeOf(r[ti])
		v, ok2 := numberOf(r[vi])
		if !ok1 || !ok2 {
			continue
		}
		name := cols[vi].Name
		if si >= 0 {
			name = cell(r[si])
		}
		series[name] = append(series[name], chartPoint{t, v})
		totals[name] += math.Abs(v)
	}
	if len(series) == 0 {
		return nil
	}
	names := make([]string, 0, len(series))
	for n := range series {
		names = append(names, n)
	}
	// The biggest series first, so that the ones left out are the least.
	slices.SortFunc(names, func(a, b string) int {
		if totals[a] != totals[b] {
			if totals[a] > totals[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	c := &chartView{W: chartW, H: chartH, Left: chartLeft, Right: chartW - chartRight, Top: chartTop, Bottom: chartH - chartBottom,
		TimeCol: cols[ti].Name, ValueCol: cols[vi].Name}
	if si >= 0 {
		c.SplitCol = cols[si].Name
	}
	if len(names) > chartMaxSeries {
		c.Hidden = len(names) - chartMaxSeries
		names = names[:chartMaxSeries]
	}
	var tMin, tMax time.Time
	vMin, vMax := 0.0, 0.0
	for _, n := range names {
		pts := series[n]
		slices.SortFunc(pts, func(a, b chartPoint) int { return a.t.Compare(b.t) })
		for _, p := range pts {
			if tMin.IsZero() || p.t.Before(tMin) {
				tMin = p.t
			}
			if p.t.After(tMax) {
				tMax = p.t
			}
			vMin, vMax = min(vMin, p.v), max(vMax, p.v)
		}
	}
	if !tMax.After(tMin) { // one instant: a minute either side
		tMin, tMax = tMin.Add(-time.Minute), tMax.Add(time.Minute)
	}
	step := niceStep((vMax - vMin) / chartYTickCount)
	vMin = math.Floor(vMin/step) * step
	vMax = math.Ceil(vMax/step) * step
	if vMax == vMin {
		vMax = vMin + step
	}
	x := func(t time.Time) float64 {
		return round1(c.Left + (c.Right-c.Left)*float64(t.Sub(tMin))/float64(tMax.Sub(tMin)))
	}
	y := func(v float64) float64 { return round1(c.Bottom - (c.Bottom-c.Top)*(v-vMin)/(vMax-vMin)) }
	for v := vMin; v <= vMax+step/2; v += step {
		c.YTicks = append(c.YTicks, chartTick{Pos: y(v), Label: numberLabel(v)})
	}
	layout := "15:04"
	if tMax.Sub(tMin) > 24*time.Hour {
		layout = "Jan 2 15:04"
	}
	for i := range 5 {
		t := tMin.Add(time.Duration(float64(tMax.Sub(tMin)) * float64(i) / 4))
		c.XTicks = append(c.XTicks, chartTick{Pos: x(t), Label: t.UTC().Format(layout)})
	}
	for i, n := range names {
		s := chartSeries{Name: n, Class: "s" + strconv.Itoa(i)}
		var pts []string
		for _, p := range series[n] {
			px, py := x(p.t), y(p.v)
			pts = append(pts, strconv.FormatFloat(px, 'f', -1, 64)+","+strconv.FormatFloat(py, 'f', -1, 64))
			if len(series[n]) <= chartMaxDots {
				s.Dots = append(s.Dots, chartDot{X: px, Y: py, Title: fmt.Sprintf("%s: %s at %s UTC", n, numberLabel(p.v), p.t.UTC().Format("2006-01-02 15:04:05"))})
			}
		}
		s.Points = strings.Join(pts, " ")
		c.Series = append(c.Series, s)
	}
	c.Label = fmt.Sprintf("%s by %s", c.ValueCol, c.TimeCol)
	if c.SplitCol != "" {
		c.Label += " and " + c.SplitCol
	}
	return c
}

func isNumberType(t string) bool {
	switch t {
	case dcr.TypeLong, dcr.TypeInt, dcr.TypeReal, "decimal":
		return true
	}
	return false
}

func timeOf(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	return dcr.ParseDatetime(s)
}

func numberOf(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case int64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string: // a decimal travels as a string
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func numberLabel(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return formatInt(int64(v))
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }
