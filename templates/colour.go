package templates

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"golang.org/x/image/colornames"
)

// rgb is an opaque colour, each channel 0..1.
type rgb struct{ r, g, b float64 }

// CheckColour reports whether s is a colour `accent` accepts (parseColour).
func CheckColour(s string) error {
	_, err := parseColour(s)
	return err
}

// parseColour reads a CSS colour as an operator writes it for `accent`: a
// hex colour (#rgb, #rgba, #rrggbb, #rrggbbaa), rgb()/rgba(), hsl()/hsla()
// (comma or space syntax) or a named colour. Alpha is accepted and ignored:
// the accent is always drawn opaque, so that its contrast can be computed.
// Anything else is an error, so nothing of the operator's text reaches a
// stylesheet: the theme is written from the parsed numbers.
func parseColour(s string) (rgb, error) {
	in := strings.ToLower(strings.TrimSpace(s))
	bad := func() (rgb, error) {
		return rgb{}, fmt.Errorf("accent %q: want a CSS colour: #rgb, #rrggbb, rgb(), hsl() or a colour name", s)
	}
	switch {
	case strings.HasPrefix(in, "#"):
		hex := in[1:]
		switch len(hex) {
		case 3, 4:
			hex = string([]byte{hex[0], hex[0], hex[1], hex[1], hex[2], hex[2]})
		case 6, 8:
			hex = hex[:6]
		default:
			return bad()
		}
		v, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			return bad()
		}
		return rgb{float64(v>>16&0xff) / 255, float64(v>>8&0xff) / 255, float64(v&0xff) / 255}, nil
	case strings.HasPrefix(in, "rgb(") || strings.HasPrefix(in, "rgba("):
		args, ok := colourArgs(in)
		if !ok {
			return bad()
		}
		var c [3]float64
		for i := range c {
			v, ok := number(args[i], 255)
			if !ok {
				return bad()
			}
			c[i] = clamp(v / 255)
		}
		return rgb{c[0], c[1], c[2]}, nil
	case strings.HasPrefix(in, "hsl(") || strings.HasPrefix(in, "hsla("):
		args, ok := colourArgs(in)
		if !ok {
			return bad()
		}
		h, ok := hue(args[0])
		if !ok {
			return bad()
		}
		sat, ok1 := percent(args[1])
		light, ok2 := percent(args[2])
		if !ok1 || !ok2 {
			return bad()
		}
		return hsl(h, sat, light), nil
	}
	if in == "rebeccapurple" { // CSS Color 4; not among SVG 1.1's names
		return rgb{0x66 / 255.0, 0x33 / 255.0, 0x99 / 255.0}, nil
	}
	if c, ok := colornames.Map[in]; ok {
		return rgb{float64(c.R) / 255, float64(c.G) / 255, float64(c.B) / 255}, nil
	}
	return bad()
}

// colourArgs splits the arguments of rgb(...) or hsl(...): three values,
// optionally an alpha, separated by commas or by spaces and a slash.
func colourArgs(in string) ([]string, bool) {
	open, end := strings.IndexByte(in, '('), len(in)-1
	if open < 0 || in[end] != ')' {
		return nil, false
	}
	body := strings.TrimSpace(in[open+1 : end])
	var parts []string
	if strings.Contains(body, ",") {
		for _, p := range strings.Split(body, ",") {
			parts = append(parts, strings.TrimSpace(p))
		}
	} else {
		main, alpha, hasAlpha := strings.Cut(body, "/")
		parts = strings.Fields(main)
		if hasAlpha {
			parts = append(parts, strings.TrimSpace(alpha))
		}
	}
	if len(parts) != 3 && len(parts) != 4 {
		return nil, false
	}
	if len(parts) == 4 {
		if _, ok := number(parts[3], 1); !ok {
			return nil, false
		}
	}
	return parts, true
}

// number reads a CSS number or percentage; a percentage is of scale.
func number(s string, scale float64) (float64, bool) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		return v / 100 * scale, err == nil && !math.IsNaN(v) && !math.IsInf(v, 0)
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil && !math.IsNaN(v) && !math.IsInf(v, 0)
}

func percent(s string) (float64, bool) {
	if !strings.HasSuffix(s, "%") {
		return 0, false
	}
	v, ok := number(s, 1)
	return clamp(v), ok
}

func hue(s string) (float64, bool) {
	s = strings.TrimSuffix(s, "deg")
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	v = math.Mod(v, 360)
	if v < 0 {
		v += 360
	}
	return v, true
}

func clamp(v float64) float64 { return math.Max(0, math.Min(1, v)) }

// hsl converts hue (degrees), saturation and lightness (0..1) to RGB.
func hsl(h, s, l float64) rgb {
	f := func(n float64) float64 {
		k := math.Mod(n+h/30, 12)
		a := s * math.Min(l, 1-l)
		return l - a*math.Max(-1, math.Min(math.Min(k-3, 9-k), 1))
	}
	return rgb{f(0), f(8), f(4)}
}

// luminance is WCAG 2's relative luminance.
func (c rgb) luminance() float64 {
	lin := func(v float64) float64 {
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.r) + 0.7152*lin(c.g) + 0.0722*lin(c.b)
}

// contrast is WCAG 2's contrast ratio of two colours.
func contrast(a, b rgb) float64 {
	la, lb := a.luminance(), b.luminance()
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func (c rgb) hex() string {
	b := func(v float64) int { return int(math.Round(clamp(v) * 255)) }
	return fmt.Sprintf("#%02x%02x%02x", b(c.r), b(c.g), b(c.b))
}

// mix moves c towards to by t (0..1).
func (c rgb) mix(to rgb, t float64) rgb {
	return rgb{c.r + (to.r-c.r)*t, c.g + (to.g-c.g)*t, c.b + (to.b-c.b)*t}
}

// minContrast is WCAG 2 AA for text: links, button labels and borders drawn
// in the accent must reach it against the page, and the label of a filled
// button against the accent.
const minContrast = 4.5

// Backgrounds of style.css in its light and dark schemes.
var (
	lightBackground = rgb{1, 1, 1}
	darkBackground  = rgb{0x12 / 255.0, 0x13 / 255.0, 0x16 / 255.0}
	black           = rgb{0, 0, 0}
	white           = rgb{1, 1, 1}
)

// readableOn returns c, darkened or lightened towards the opposite of bg
// just enough to reach minContrast against bg, so that any accent an
// operator picks keeps the pages at WCAG AA.
func readableOn(c, bg rgb) rgb {
	if contrast(c, bg) >= minContrast {
		return c
	}
	towards := black
	if bg.luminance() < 0.5 {
		towards = white
	}
	lo, hi := 0.0, 1.0
	for range 30 {
		mid := (lo + hi) / 2
		if contrast(c.mix(towards, mid), bg) >= minContrast {
			hi = mid
		} else {
			lo = mid
		}
	}
	return c.mix(towards, hi)
}

// onAccent is the text colour for a filled accent button: white or black,
// whichever contrasts more (one of them always reaches 4.5:1).
func onAccent(accent rgb) rgb {
	if contrast(white, accent) >= contrast(black, accent) {
		return white
	}
	return black
}

// themeCSS is the stylesheet for an accent colour: the custom properties
// style.css uses, in both colour schemes, each adjusted to WCAG AA.
func themeCSS(accent rgb) []byte {
	light := readableOn(accent, lightBackground)
	dark := readableOn(accent, darkBackground)
	return []byte(fmt.Sprintf(`/* Generated from the idv block's accent option. */
:root {
  --accent: %s;
  --on-accent: %s;
}

@media (prefers-color-scheme: dark) {
  :root {
    --accent: %s;
    --on-accent: %s;
  }
}
`, light.hex(), onAccent(light).hex(), dark.hex(), onAccent(dark).hex()))
}
