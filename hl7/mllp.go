package hl7

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// MLLP (the minimal lower layer protocol) frames each message as
// 0x0B message 0x1C 0x0D. Haven speaks it only inside TLS.
const (
	startBlock = 0x0B
	endBlock   = 0x1C
	endFrame   = 0x0D
)

// ErrFrameTooLarge: a frame ran past the limit before its end; the
// connection is closed, since what follows cannot be trusted to be a frame.
var ErrFrameTooLarge = errors.New("hl7: MLLP frame over the size limit")

// ErrNotFramed: bytes outside a frame where a frame's start was due.
var ErrNotFramed = errors.New("hl7: bytes outside an MLLP frame")

// ReadFrame reads one MLLP frame and returns the message inside it. Line
// breaks between frames are skipped (some senders add them); any other
// byte before the start block is refused. At most max bytes of message
// are held.
func ReadFrame(r *bufio.Reader, max int) ([]byte, error) {
	for {
		c, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		if c == startBlock {
			break
		}
		if c != '\r' && c != '\n' {
			return nil, ErrNotFramed
		}
	}
	var msg []byte
	for {
		chunk, err := r.ReadSlice(endBlock)
		if err != nil && err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if bytes.IndexByte(chunk, startBlock) >= 0 {
			return nil, ErrNotFramed // a new frame inside an unfinished one
		}
		if len(msg)+len(chunk) > max+1 {
			return nil, ErrFrameTooLarge
		}
		msg = append(msg, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		next, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if next == endFrame {
			return msg[:len(msg)-1], nil
		}
		// An end block inside the message: keep it and read on.
		if err := r.UnreadByte(); err != nil {
			return nil, err
		}
	}
}

// WriteFrame writes msg as one MLLP frame.
func WriteFrame(w io.Writer, msg []byte) error {
	b := make([]byte, 0, len(msg)+3)
	b = append(b, startBlock)
	b = append(b, msg...)
	b = append(b, endBlock, endFrame)
	_, err := w.Write(b)
	return err
}

// TLS configuration both ends share: TLS 1.3 only, as for every Haven
// connection, so the hybrid post-quantum key exchange is offered.
func tls13(c *tls.Config) *tls.Config {
	c = c.Clone()
	c.MinVersion = tls.VersionTLS13
	return c
}

// A Client sends messages to one lab over one TLS connection and reads
// each answer before sending the next, as MLLP requires.
type Client struct {
	conn     *tls.Conn
	r        *bufio.Reader
	maxFrame int
	mu       sync.Mutex
}

// Dial opens a TLS connection to a lab's MLLP port. cfg carries the
// lab's CA (RootCAs), the server name, and Haven's client certificate
// when the lab asks for one.
func Dial(ctx context.Context, addr string, cfg *tls.Config) (*Client, error) {
	d := tls.Dialer{Config: tls13(cfg)}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := c.(*tls.Conn)
	return &Client{conn: conn, r: bufio.NewReader(conn), maxFrame: DefaultLimits.MessageBytes}, nil
}

// Send writes msg in a frame and returns the message framed in answer,
// waiting no later than ctx's deadline (a minute when it has none).
func (c *Client) Send(ctx context.Context, msg []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	if err := c.conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := WriteFrame(c.conn, msg); err != nil {
		return nil, err
	}
	return ReadFrame(c.r, c.maxFrame)
}

// ConnectionState is the TLS state of the connection (for tests that
// check what was negotiated).
func (c *Client) ConnectionState() tls.ConnectionState { return c.conn.ConnectionState() }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// A Peer is the other end of an MLLP connection: its verified client
// certificate, which names the lab.
type Peer struct {
	Certificate *x509.Certificate
	Addr        string
}

// A Handler answers each message with the ACK to frame back. It is handed
// the raw message (already bounded by the frame limit) so that it, not the
// transport, decides what a bad message gets.
type Handler interface {
	ServeHL7(ctx context.Context, peer Peer, msg []byte) []byte
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, peer Peer, msg []byte) []byte

// ServeHL7 calls f.
func (f HandlerFunc) ServeHL7(ctx context.Context, peer Peer, msg []byte) []byte {
	return f(ctx, peer, msg)
}

// A Server is an MLLP listener over mutual TLS. Connections whose client
// does not present a certificate the TLS configuration verifies are
// closed during the handshake.
type Server struct {
	TLSConfig   *tls.Config // with Certificates, ClientCAs and ClientAuth
	Handler     Handler
	MaxFrame    int           // DefaultLimits.MessageBytes when 0
	IdleTimeout time.Duration // between frames; five minutes when 0
	// Failed, when set, is told of a connection that ended in an error
	// (never with message content: the errors come from TLS and framing).
	Failed func(err error)

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("hl7: server closed")

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	if s.TLSConfig == nil || s.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		return fmt.Errorf("hl7: the MLLP listener requires verified client certificates")
	}
	cfg := tls13(s.TLSConfig)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.ln = ln
	s.conns = map[net.Conn]struct{}{}
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return err
		}
		conn := tls.Server(c, cfg)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return ErrServerClosed
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, conn)
				s.mu.Unlock()
				conn.Close()
			}()
			if err := s.serveConn(ctx, conn); err != nil && s.Failed != nil {
				s.Failed(err)
			}
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, conn *tls.Conn) error {
	idle := s.IdleTimeout
	if idle == 0 {
		idle = 5 * time.Minute
	}
	max := s.MaxFrame
	if max == 0 {
		max = DefaultLimits.MessageBytes
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := conn.HandshakeContext(ctx); err != nil {
		return err
	}
	st := conn.ConnectionState()
	peer := Peer{Addr: conn.RemoteAddr().String()}
	if len(st.PeerCertificates) > 0 {
		peer.Certificate = st.PeerCertificates[0]
	}
	r := bufio.NewReader(conn)
	for {
		conn.SetDeadline(time.Now().Add(idle))
		msg, err := ReadFrame(r, max)
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		ack := s.Handler.ServeHL7(ctx, peer, msg)
		if err := WriteFrame(conn, ack); err != nil {
			return err
		}
	}
}

// Close stops accepting, closes every connection and waits for their
// handlers to return.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
