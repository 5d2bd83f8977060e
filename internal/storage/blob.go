package storage

import (
	"context"
	"fmt"
	"net/url"
)

func openBlob(ctx context.Context, u *url.URL, opts Options) (Store, error) {
	return nil, fmt.Errorf("open repository %s: the %s backend is not built yet", Redact(u.String()), u.Scheme)
}
