-- Mutual TLS for integrations (RFC 8705): a backend system may be
-- registered with its client certificate. tls_cert_thumbprint is the
-- certificate's SHA-256 thumbprint as RFC 8705 writes it (x5t#S256,
-- base64url of the DER's hash): the token endpoint recognises the client
-- by it, and every access token it is issued is bound to it, so a token
-- presented without that certificate is refused. tls_cert_subject and
-- tls_cert_expires_us are for the admin's page only. A certificate is
-- public; nothing here is PHI. '' and 0 for a client without one.
ALTER TABLE smart_clients ADD COLUMN tls_cert_thumbprint TEXT NOT NULL DEFAULT '';
ALTER TABLE smart_clients ADD COLUMN tls_cert_subject TEXT NOT NULL DEFAULT '';
ALTER TABLE smart_clients ADD COLUMN tls_cert_expires_us BIGINT NOT NULL DEFAULT 0;
