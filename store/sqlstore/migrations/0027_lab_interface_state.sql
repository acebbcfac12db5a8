-- What the admin's page shows of a lab's results interface without the
-- secrets themselves: the client certificate's subject and end date (a
-- certificate is public, its fingerprint is what recognises the lab) and
-- when the integration token was made (only its hash is kept).
ALTER TABLE lab_interfaces ADD COLUMN cert_subject TEXT;
ALTER TABLE lab_interfaces ADD COLUMN cert_expires_us BIGINT;
ALTER TABLE lab_interfaces ADD COLUMN token_made_us BIGINT;
