//! The server's first packet (the handshake) read on our own socket: version, default
//! auth plugin and whether TLS is offered — and, when asked, the SSLRequest and the
//! TLS handshake, so TLS is timed and its certificate inspected like for PostgreSQL.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// CLIENT_SSL capability bit.
const CLIENT_SSL: u32 = 0x0800;
const CLIENT_PROTOCOL_41: u32 = 0x0200;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;

#[derive(Debug, Clone, PartialEq)]
pub struct Greeting {
    pub server_version: String,
    pub connection_id: u32,
    pub capabilities: u32,
    pub auth_plugin: String,
}

impl Greeting {
    pub fn offers_tls(&self) -> bool {
        self.capabilities & CLIENT_SSL != 0
    }
    pub fn is_mariadb(&self) -> bool {
        self.server_version.contains("MariaDB")
    }
}

/// Reads one packet; packets longer than this are not a greeting.
const MAX_GREETING: usize = 4096;

pub async fn read<S: AsyncRead + Unpin>(s: &mut S, timeout: Duration) -> Result<Greeting, String> {
    let payload = tokio::time::timeout(timeout, async {
        let mut hdr = [0u8; 4];
        s.read_exact(&mut hdr).await?;
        let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], 0]) as usize;
        if len > MAX_GREETING {
            return Err(std::io::Error::other("greeting too long"));
        }
        let mut p = vec![0u8; len];
        s.read_exact(&mut p).await?;
        Ok(p)
    })
    .await
    .map_err(|_| format!("no greeting within {timeout:?}"))?
    .map_err(|e| e.to_string())?;
    parse(&payload)
}

pub fn parse(p: &[u8]) -> Result<Greeting, String> {
    if p.first() == Some(&0xFF) {
        // An error instead of a greeting: host blocked, too many connections...
        let code = p
            .get(1..3)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .unwrap_or(0);
        let msg = String::from_utf8_lossy(p.get(3..).unwrap_or_default());
        return Err(format!(
            "server refused the connection: {code} {}",
            msg.trim_start_matches('#')
        ));
    }
    let bad = || "malformed greeting".to_string();
    if p.first() != Some(&10) {
        return Err(format!("unsupported protocol version {:?}", p.first()));
    }
    let nul = p[1..].iter().position(|&b| b == 0).ok_or_else(bad)? + 1;
    let server_version = String::from_utf8_lossy(&p[1..nul]).into_owned();
    let mut i = nul + 1;
    let connection_id = u32::from_le_bytes(
        p.get(i..i + 4)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    i += 4 + 8 + 1; // auth data part 1, filler
    let cap_lo = u16::from_le_bytes(
        p.get(i..i + 2)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    ) as u32;
    i += 2 + 1 + 2; // charset, status
    let cap_hi = p
        .get(i..i + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as u32)
        .unwrap_or(0);
    let capabilities = cap_lo | (cap_hi << 16);
    i += 2;
    let auth_len = p.get(i).copied().unwrap_or(0) as usize;
    i += 1 + 10; // reserved
    i += auth_len.saturating_sub(8).max(13);
    let auth_plugin = p
        .get(i..)
        .map(|rest| {
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            String::from_utf8_lossy(&rest[..end]).into_owned()
        })
        .unwrap_or_default();
    Ok(Greeting {
        server_version,
        connection_id,
        capabilities,
        auth_plugin,
    })
}

/// Sends the SSLRequest packet (sequence 1) that precedes the TLS handshake.
pub async fn ssl_request<S: AsyncWrite + Unpin>(s: &mut S) -> std::io::Result<()> {
    let mut p = Vec::with_capacity(36);
    p.extend_from_slice(&[32, 0, 0, 1]);
    p.extend_from_slice(
        &(CLIENT_SSL | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION).to_le_bytes(),
    );
    p.extend_from_slice(&(16u32 * 1024 * 1024).to_le_bytes());
    p.push(45); // utf8mb4_general_ci
    p.extend_from_slice(&[0u8; 23]);
    s.write_all(&p).await?;
    s.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_greeting_and_an_error() {
        let mut p = vec![10];
        p.extend_from_slice(b"10.11.6-MariaDB\0");
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(b"abcdefgh\0");
        p.extend_from_slice(&(0xFFFFu16).to_le_bytes());
        p.push(45);
        p.extend_from_slice(&[2, 0]);
        p.extend_from_slice(&(0x81BFu16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0u8; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0");
        p.extend_from_slice(b"mysql_native_password\0");
        let g = parse(&p).unwrap();
        assert_eq!(g.server_version, "10.11.6-MariaDB");
        assert_eq!(g.connection_id, 7);
        assert!(g.offers_tls() && g.is_mariadb());
        assert_eq!(g.auth_plugin, "mysql_native_password");
        let err = parse(b"\xff\x10\x04#HY000Too many connections").unwrap_err();
        assert!(
            err.contains("1040") && err.contains("Too many connections"),
            "{err}"
        );
    }
}
