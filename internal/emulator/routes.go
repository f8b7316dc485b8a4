package emulator

import "strings"

// Match picks the route an HTTP API would send a request to, and its path
// parameters. As in API Gateway, the most specific route wins: segment by
// segment, a literal beats a {variable}, which beats a greedy {proxy+};
// then a route for the method beats ANY. "$default" takes what nothing
// else matches.
func Match(routes []string, method, path string) (route string, params map[string]string, ok bool) {
	segs := split(path)
	var bestScore []int
	for _, r := range routes {
		m, p, found := strings.Cut(r, " ")
		if !found || (m != method && m != "ANY") {
			continue
		}
		score, vars, matched := matchPath(split(p), segs)
		if !matched {
			continue
		}
		if m != "ANY" {
			score = append(score, 1) // breaks ties in favour of the exact method
		} else {
			score = append(score, 0)
		}
		if bestScore == nil || better(score, bestScore) {
			route, params, bestScore = r, vars, score
		}
	}
	if bestScore != nil {
		return route, params, true
	}
	for _, r := range routes {
		if r == "$default" {
			return r, nil, true
		}
	}
	return "", nil, false
}

func split(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}

// matchPath matches a route's segments against a request's, scoring each
// segment 3 for a literal, 2 for a variable and 1 for a greedy variable.
func matchPath(route, segs []string) (score []int, vars map[string]string, ok bool) {
	for i, rs := range route {
		switch {
		case strings.HasPrefix(rs, "{") && strings.HasSuffix(rs, "+}"):
			if i != len(route)-1 || i >= len(segs) {
				return nil, nil, false
			}
			vars = set(vars, rs[1:len(rs)-2], strings.Join(segs[i:], "/"))
			return append(score, 1), vars, true
		case i >= len(segs):
			return nil, nil, false
		case strings.HasPrefix(rs, "{") && strings.HasSuffix(rs, "}"):
			vars = set(vars, rs[1:len(rs)-1], segs[i])
			score = append(score, 2)
		case rs == segs[i]:
			score = append(score, 3)
		default:
			return nil, nil, false
		}
	}
	if len(route) != len(segs) {
		return nil, nil, false
	}
	return score, vars, true
}

func set(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// better compares scores segment by segment; at a tie, the longer (more
// literal segments) wins.
func better(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return len(a) > len(b)
}
