package api

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/packetworks/flowsentry/schemas/config"
)

// Roles.
const (
	RoleReadOnly = "read-only"
	RoleOperator = "operator"
)

// Caller is an authenticated API user.
type Caller struct {
	Name string
	Role string
}

// Token is one entry of the tokens file.
type Token struct {
	Name  string `yaml:"name"`
	Role  string `yaml:"role"`
	Token string `yaml:"token"`
}

// Tokens maps token hashes to callers. Only hashes are kept in memory so a
// heap dump does not hand out credentials, and the lookup does not compare
// secrets byte by byte.
type Tokens struct {
	byHash map[[32]byte]Caller
}

// MinTokenLen rejects guessable tokens.
const MinTokenLen = 20

// LoadTokens reads tokens from a YAML file (a list of {name, role, token};
// the file should be 0600) and/or an environment value of the form
// "name:role:token,name:role:token". Either may be empty.
func LoadTokens(path, envValue string) (*Tokens, error) {
	var list []Token
	if path != "" {
		if err := config.Load(path, &list); err != nil {
			return nil, fmt.Errorf("api.tokens_file: %w", err)
		}
	}
	if envValue != "" {
		for i, part := range strings.Split(envValue, ",") {
			f := strings.SplitN(strings.TrimSpace(part), ":", 3)
			if len(f) != 3 {
				return nil, fmt.Errorf("api.tokens_env: entry %d is not name:role:token", i)
			}
			list = append(list, Token{Name: f[0], Role: f[1], Token: f[2]})
		}
	}
	return NewTokens(list)
}

// NewTokens checks and indexes tokens.
func NewTokens(list []Token) (*Tokens, error) {
	t := &Tokens{byHash: map[[32]byte]Caller{}}
	var errs []error
	for i, tk := range list {
		key := fmt.Sprintf("tokens[%d]", i)
		if tk.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: required", key))
		}
		if tk.Role != RoleReadOnly && tk.Role != RoleOperator {
			errs = append(errs, fmt.Errorf("%s.role: %q is not %s or %s", key, tk.Role, RoleReadOnly, RoleOperator))
		}
		if len(tk.Token) < MinTokenLen {
			errs = append(errs, fmt.Errorf("%s.token: shorter than %d characters", key, MinTokenLen))
		}
		h := sha256.Sum256([]byte(tk.Token))
		if _, dup := t.byHash[h]; dup {
			errs = append(errs, fmt.Errorf("%s.token: same token as another entry", key))
		}
		t.byHash[h] = Caller{Name: tk.Name, Role: tk.Role}
	}
	return t, errors.Join(errs...)
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.byHash) }

// Lookup finds the caller of a bearer token.
func (t *Tokens) Lookup(token string) (Caller, bool) {
	if token == "" {
		return Caller{}, false
	}
	c, ok := t.byHash[sha256.Sum256([]byte(token))]
	return c, ok
}

// FileIsPrivate warns about a tokens file others can read.
func FileIsPrivate(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("api.tokens_file: %s is readable by group or others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	return nil
}
