package sqlstore

import (
	"context"
	"time"
)

// CountRequest adds one request to key's count in the fixed window that
// starts at window and returns the count with it. The count lives in the
// database, so every node serving from it counts against the same limit:
// with counts in each node's memory, a load balancer would multiply a
// client's allowance by the number of nodes. One upsert, atomic on both
// dialects, so concurrent requests are all counted.
func (d *DB) CountRequest(ctx context.Context, key string, window time.Time) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `INSERT INTO rate_limits (key, window_us, hits) VALUES ($1, $2, 1)
		ON CONFLICT (key, window_us) DO UPDATE SET hits = rate_limits.hits + 1
		RETURNING hits`, []byte(key), micros(window)).Scan(&n)
	return n, err
}

// PurgeRequestCounts deletes the counts of windows that began before
// cutoff; they no longer limit anything.
func (d *DB) PurgeRequestCounts(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM rate_limits WHERE window_us < $1`, micros(cutoff))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
