//! Credentials produced by PostgreSQL 15 itself, so tests check compatibility with the real
//! server without connecting to one. Each SCRAM verifier was read from `pg_authid.rolpassword`
//! after `SET password_encryption = 'scram-sha-256'; CREATE ROLE .. PASSWORD '..'`.

/// Verifier of an ASCII password.
pub(crate) const PG_SCRAM_ASCII_PASSWORD: &str = "correct horse battery staple";
pub(crate) const PG_SCRAM_ASCII: &str = "SCRAM-SHA-256$4096:ESII+fDn9TTJ1NgmpyVRzg==$t2JZ2/DmlQjR92WXrDzmXsoCmAEtP6IkJGVFNnki1t0=:c2uZCI++jnz9kPo2msNfbM6xNQmWFWofqxoMw4WQDPM=";

/// Verifier of a password that SASLprep changes (U+2163 ROMAN NUMERAL FOUR becomes "IV"),
/// created with `PASSWORD E'p\u00e4ss w\u00f6rd\u2163'`.
pub(crate) const PG_SCRAM_UNICODE_PASSWORD: &str = "p\u{e4}ss w\u{f6}rd\u{2163}";
pub(crate) const PG_SCRAM_UNICODE: &str = "SCRAM-SHA-256$4096:D+HsLLL851x7mofPnBpRRg==$eQb2fumxRzdPt599aiSQa3VRk/MgtYmKarQ7BXV+9Sk=:CCoCw/NRrJc2Oki2eTEgE5kEZI4S+ni5mxRmAQOGg4A=";

/// `SELECT 'md5' || md5('s3cret' || 'alice')`.
pub(crate) const PG_MD5_USER: &str = "alice";
pub(crate) const PG_MD5_PASSWORD: &str = "s3cret";
pub(crate) const PG_MD5: &str = "md58213e4d0d5792b064442db7988e9f4c4";
/// `SELECT 'md5' || md5(convert_to('8213e4d0d5792b064442db7988e9f4c4', 'UTF8') || '\x01020304'::bytea)`:
/// what a client sends for [`PG_MD5`] when the server's salt is 01 02 03 04.
pub(crate) const PG_MD5_SALT: [u8; 4] = [1, 2, 3, 4];
pub(crate) const PG_MD5_RESPONSE: &str = "md5b79948bbeb35dee03ab8fe15a839030b";
