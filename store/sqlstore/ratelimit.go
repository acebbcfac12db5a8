package sqlstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// CountRequest adds one request to key's count in the fixed window that
// starts at window and returns the count with it. The count lives in the
// database, so every node serving from it counts against the same limit:
// with counts in each node's memory only, a load balancer would multiply a
// client's allowance by the number of nodes.
func (d *DB) CountRequest(ctx context.Context, key string, window time.Time) (int, error) {
	n, err := d.AddRequestCounts(ctx, window, []string{key}, []int{1})
	if err != nil {
		return 0, err
	}
	return n[0], nil
}

// requestCountRows is the most rows one upsert carries: three parameters a
// row stays far below either database's limit on parameters.
const requestCountRows = 500

// AddRequestCounts adds adds[i] to keys[i]'s count in the window that
// starts at window and returns each key's count after it, in the order of
// keys. An add of 0 only reads the shared count (and creates a row of 0
// where there was none). The web server's rate limiter counts in memory
// and flushes here every ~100 ms, so a node pays one statement per flush,
// not a write per request. Each batch of rows is one upsert, atomic on
// both dialects, so concurrent flushes from several nodes all count; keys
// are written in sorted order so that two nodes' flushes lock rows in the
// same order and cannot deadlock on PostgreSQL.
func (d *DB) AddRequestCounts(ctx context.Context, window time.Time, keys []string, adds []int) ([]int, error) {
	if len(keys) != len(adds) {
		return nil, fmt.Errorf("sqlstore: %d request count keys and %d adds", len(keys), len(adds))
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return keys[order[a]] < keys[order[b]] })
	w := micros(window)
	totals := make([]int, len(keys))
	for start := 0; start < len(order); start += requestCountRows {
		batch := order[start:min(start+requestCountRows, len(order))]
		var q strings.Builder
		q.WriteString(`INSERT INTO rate_limits (key, window_us, hits) VALUES `)
		args := make([]any, 0, 3*len(batch))
		at := make(map[string]int, len(batch))
		for j, i := range batch {
			if j > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "($%d, $%d, $%d)", 3*j+1, 3*j+2, 3*j+3)
			args = append(args, []byte(keys[i]), w, adds[i])
			at[keys[i]] = i
		}
		q.WriteString(` ON CONFLICT (key, window_us) DO UPDATE SET hits = rate_limits.hits + excluded.hits RETURNING key, hits`)
		rows, err := d.db.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k []byte
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				rows.Close()
				return nil, err
			}
			if i, ok := at[string(k)]; ok {
				totals[i] = n
			}
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return totals, nil
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
