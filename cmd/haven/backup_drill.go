package main

import (
	"context"
	"errors"
)

func runBackupDrill(ctx context.Context, env *Env, args []string) error {
	return errors.New("not yet")
}
