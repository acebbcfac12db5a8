package sqlstore

import (
	"context"
	"database/sql/driver"
	"sync/atomic"
)

// Every statement a request sends costs a round trip to PostgreSQL (and a
// statement's worth of work on SQLite), and on two cores those add up to
// most of what a request costs. The driver is wrapped so each database
// counts what reaches its engine: a statement executed or queried, one
// prepared, a transaction begun, committed or rolled back. Tests read the
// count (RoundTrips) to hold the hot paths to a budget; nothing else does.

// RoundTrips returns how many statements and transaction boundaries d has
// sent to its engine since it was opened.
func (d *DB) RoundTrips() int64 { return d.trips.Load() }

// countingConnector opens connections of next that count into n.
type countingConnector struct {
	next driver.Connector
	n    *atomic.Int64
	turn writeTurn // SQLite's writers queue on it (writeturn.go); nil on PostgreSQL
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.next.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, n: c.n, turn: c.turn}, nil
}

func (c countingConnector) Driver() driver.Driver { return c.next.Driver() }

// dsnConnector is a driver.Connector for a driver that offers none.
type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

// connectorFor returns a connector of drv for dsn.
func connectorFor(drv driver.Driver, dsn string) (driver.Connector, error) {
	if dc, ok := drv.(driver.DriverContext); ok {
		return dc.OpenConnector(dsn)
	}
	return dsnConnector{drv, dsn}, nil
}

// countingConn passes everything to the driver's connection, counting what
// reaches the engine. Interfaces the driver's connection lacks answer as
// database/sql expects of a driver without them.
type countingConn struct {
	driver.Conn
	n    *atomic.Int64
	turn writeTurn // nil on PostgreSQL
	held bool      // the turn is this connection's, for its transaction
}

// takeTurn takes the write turn for a statement outside a transaction,
// returning what gives it back.
func (c *countingConn) takeTurn(ctx context.Context) (func(), error) {
	if c.turn == nil || c.held {
		return func() {}, nil
	}
	if err := c.turn.take(ctx); err != nil {
		return nil, err
	}
	return c.turn.give, nil
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.n.Add(1)
	var st driver.Stmt
	var err error
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		st, err = pc.PrepareContext(ctx, query)
	} else {
		st, err = c.Conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: st, conn: c, n: c.n}, nil
}

func (c *countingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.turn != nil && !c.held {
		if err := c.turn.take(ctx); err != nil {
			return nil, err
		}
		c.held = true
	}
	tx, err := c.beginTx(ctx, opts)
	if err != nil {
		c.endTx()
		return nil, err
	}
	return countingTx{tx, c}, nil
}

// endTx gives back the turn the connection's transaction held.
func (c *countingConn) endTx() {
	if c.held {
		c.held = false
		c.turn.give()
	}
}

func (c *countingConn) beginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.n.Add(1)
	var tx driver.Tx
	var err error
	if bt, ok := c.Conn.(driver.ConnBeginTx); ok {
		tx, err = bt.BeginTx(ctx, opts)
	} else {
		tx, err = c.Conn.Begin() //nolint:staticcheck // the driver offers nothing newer
	}
	return tx, err
}

func (c *countingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	ec, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip // database/sql prepares, which counts
	}
	give, err := c.takeTurn(ctx)
	if err != nil {
		return nil, err
	}
	defer give()
	c.n.Add(1)
	return ec.ExecContext(ctx, query, args)
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	qc, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.n.Add(1)
	return qc.QueryContext(ctx, query, args)
}

func (c *countingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type countingTx struct {
	driver.Tx
	c *countingConn
}

func (t countingTx) Commit() error {
	defer t.c.endTx()
	t.c.n.Add(1)
	return t.Tx.Commit()
}

func (t countingTx) Rollback() error {
	defer t.c.endTx()
	t.c.n.Add(1)
	return t.Tx.Rollback()
}

// countingStmt counts each execution of a prepared statement.
type countingStmt struct {
	driver.Stmt
	conn *countingConn
	n    *atomic.Int64
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	give, err := s.conn.takeTurn(ctx)
	if err != nil {
		return nil, err
	}
	defer give()
	s.n.Add(1)
	if ec, ok := s.Stmt.(driver.StmtExecContext); ok {
		return ec.ExecContext(ctx, args)
	}
	vals, err := plainValues(args)
	if err != nil {
		return nil, err
	}
	return s.Stmt.Exec(vals) //nolint:staticcheck // the driver offers nothing newer
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.n.Add(1)
	if qc, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return qc.QueryContext(ctx, args)
	}
	vals, err := plainValues(args)
	if err != nil {
		return nil, err
	}
	return s.Stmt.Query(vals) //nolint:staticcheck // the driver offers nothing newer
}

// CheckNamedValue is the statement's checker, else its connection's, as
// database/sql would ask them without the wrapper.
func (s *countingStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	if ch, ok := s.conn.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func plainValues(args []driver.NamedValue) ([]driver.Value, error) {
	vals := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, driver.ErrSkip
		}
		vals[i] = a.Value
	}
	return vals, nil
}

// Close closes the connection, giving back a turn a transaction it was
// in still held.
func (c *countingConn) Close() error {
	c.endTx()
	return c.Conn.Close()
}
