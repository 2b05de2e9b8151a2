package providers

import (
	"context"
	"sync"
	"testing"

	"github.com/caddy-idv/caddy-idv/store"
)

func TestLoadSecretIsSharedAndCreatedOnce(t *testing.T) {
	s := store.NewMemory(nil)
	var wg sync.WaitGroup
	got := make([][]byte, 20)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sec, err := LoadSecret(context.Background(), s, SubjectSecretKey)
			if err != nil {
				t.Error(err)
			}
			got[i] = sec
		}()
	}
	wg.Wait()
	for _, g := range got {
		if len(g) != 32 || string(g) != string(got[0]) {
			t.Fatalf("instances disagree on the secret")
		}
	}
}

func TestKeyedSubject(t *testing.T) {
	a, b := []byte("secret-a-secret-a-secret-a-00000"), []byte("secret-b-secret-b-secret-b-00000")
	s1 := KeyedSubject(a, "marksign:", "EE", "38001085718")
	if s1 != KeyedSubject(a, "marksign:", "EE", "38001085718") {
		t.Fatal("not stable")
	}
	if s1 == KeyedSubject(b, "marksign:", "EE", "38001085718") {
		t.Fatal("the secret does not key the subject")
	}
	if KeyedSubject(a, "x:", "ab", "c") == KeyedSubject(a, "x:", "a", "bc") {
		t.Fatal("parts run together")
	}
	if len(s1) != len("marksign:")+22 {
		t.Fatalf("subject %q", s1)
	}
}
