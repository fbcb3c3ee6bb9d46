//! SQLSTATE codes. The table is generated from PostgreSQL's own `errcodes.txt`
//! (see `scripts/gen-sqlstate.sh`); the constants below name the codes the proxy itself raises.

mod table;

/// A five-character SQLSTATE code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SqlState(&'static str);

impl SqlState {
    pub const PROTOCOL_VIOLATION: SqlState = SqlState("08P01");
    pub const CONNECTION_FAILURE: SqlState = SqlState("08006");
    pub const CONNECTION_EXCEPTION: SqlState = SqlState("08000");
    pub const SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION: SqlState = SqlState("08001");
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState("0A000");
    pub const INVALID_AUTHORIZATION_SPECIFICATION: SqlState = SqlState("28000");
    pub const INVALID_PASSWORD: SqlState = SqlState("28P01");
    pub const INVALID_CATALOG_NAME: SqlState = SqlState("3D000");
    pub const TOO_MANY_CONNECTIONS: SqlState = SqlState("53300");
    pub const QUERY_CANCELED: SqlState = SqlState("57014");
    pub const ADMIN_SHUTDOWN: SqlState = SqlState("57P01");
    pub const CANNOT_CONNECT_NOW: SqlState = SqlState("57P03");
    pub const INTERNAL_ERROR: SqlState = SqlState("XX000");

    /// The code as PostgreSQL writes it, e.g. `"57014"`.
    pub fn code(self) -> &'static str {
        self.0
    }

    /// PostgreSQL's condition name (`query_canceled`), if the code is a known one.
    pub fn name(self) -> Option<&'static str> {
        lookup(self.0)
    }

    /// A known code from its text; `None` for anything PostgreSQL does not define.
    pub fn from_code(code: &str) -> Option<SqlState> {
        let i = table::CODES
            .binary_search_by(|(c, _)| (*c).cmp(code))
            .ok()?;
        Some(SqlState(table::CODES[i].0))
    }
}

/// The condition name of a code, e.g. `lookup("40001") == Some("serialization_failure")`.
pub fn lookup(code: &str) -> Option<&'static str> {
    let i = table::CODES
        .binary_search_by(|(c, _)| (*c).cmp(code))
        .ok()?;
    Some(table::CODES[i].1)
}

impl std::fmt::Display for SqlState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_so_binary_search_works() {
        assert!(table::CODES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn constants_are_real_codes() {
        for s in [
            SqlState::PROTOCOL_VIOLATION,
            SqlState::INVALID_PASSWORD,
            SqlState::INVALID_CATALOG_NAME,
            SqlState::QUERY_CANCELED,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::CONNECTION_FAILURE,
        ] {
            assert!(s.name().is_some(), "{s} is not in errcodes.txt");
        }
        assert_eq!(lookup("40001"), Some("serialization_failure"));
        assert_eq!(SqlState::from_code("ZZZZZ"), None);
    }
}
