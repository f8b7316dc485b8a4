package emulator

import (
	"fmt"
	"testing"
)

func TestMatch(t *testing.T) {
	routes := []string{"GET /items", "GET /items/{id}", "ANY /items/{id}", "POST /items/{id}/notes", "GET /items/special",
		"ANY /files/{proxy+}", "GET /", "$default"}
	tests := []struct {
		method, path, route string
		params              map[string]string
	}{
		{"GET", "/items", "GET /items", nil},
		{"GET", "/items/", "GET /items", nil},
		{"GET", "/items/42", "GET /items/{id}", map[string]string{"id": "42"}},
		{"DELETE", "/items/42", "ANY /items/{id}", map[string]string{"id": "42"}},
		{"GET", "/items/special", "GET /items/special", nil},
		{"POST", "/items/7/notes", "POST /items/{id}/notes", map[string]string{"id": "7"}},
		{"GET", "/files/a/b/c.txt", "ANY /files/{proxy+}", map[string]string{"proxy": "a/b/c.txt"}},
		{"GET", "/files", "$default", nil},
		{"GET", "/", "GET /", nil},
		{"PUT", "/elsewhere", "$default", nil},
	}
	for _, tt := range tests {
		route, params, ok := Match(routes, tt.method, tt.path)
		if !ok || route != tt.route || fmt.Sprint(params) != fmt.Sprint(tt.params) {
			t.Errorf("%s %s = %q %v %v, want %q %v", tt.method, tt.path, route, params, ok, tt.route, tt.params)
		}
	}
	if _, _, ok := Match([]string{"GET /items"}, "GET", "/other"); ok {
		t.Error("matched without a $default route")
	}
}
