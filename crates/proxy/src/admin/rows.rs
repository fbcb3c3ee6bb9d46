//! The messages the console writes: result sets typed as PgBouncer types them, notices,
//! command tags. Columns are declared the way PgBouncer's `admin.c` and `stats.c` declare
//! them, one type letter per column, so each table can be checked against its source.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use dbwarden_wire::backend::{tag as be, TxStatus};
use dbwarden_wire::encode;

/// Type OIDs of PostgreSQL's `pg_type`.
pub const TEXT_OID: u32 = 25;
pub const INT4_OID: u32 = 23;
pub const INT8_OID: u32 = 20;
pub const NUMERIC_OID: u32 = 1700;

/// PgBouncer's type letters (`pktbuf_write_RowDescription`): `s` text, `i` int4, `q` int8,
/// `N` numeric, `T` a timestamp sent as text. Returns the OID and the type length.
pub fn type_of(letter: u8) -> (u32, i16) {
    match letter {
        b'i' => (INT4_OID, 4),
        b'q' => (INT8_OID, 8),
        b'N' => (NUMERIC_OID, -1),
        // 's' and 'T'
        _ => (TEXT_OID, -1),
    }
}

fn frame(buf: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    buf.put_u8(tag);
    let at = buf.len();
    buf.put_u32(0);
    body(buf);
    let len = (buf.len() - at) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn cstr(buf: &mut BytesMut, s: &str) {
    buf.put_slice(s.as_bytes());
    buf.put_u8(0);
}

/// One value of a row, as text on the wire (the console answers in the text format only).
pub enum Cell<'a> {
    Text(&'a str),
    Int(i64),
    /// Unsigned totals (`N` columns).
    Uint(u64),
    /// A time as PgBouncer prints it: `2026-11-22 01:27:41 UTC`.
    Time(SystemTime),
    Null,
}

impl<'a> From<&'a str> for Cell<'a> {
    fn from(s: &'a str) -> Cell<'a> {
        Cell::Text(s)
    }
}

/// A result set being written into `buf`: the RowDescription at once, rows as they come.
pub struct Table<'b> {
    buf: &'b mut BytesMut,
    columns: usize,
    rows: usize,
    scratch: String,
}

impl<'b> Table<'b> {
    /// `letters` has one PgBouncer type letter per name.
    pub fn new(buf: &'b mut BytesMut, letters: &str, names: &[&str]) -> Table<'b> {
        debug_assert_eq!(letters.len(), names.len(), "one type letter per column");
        frame(buf, be::ROW_DESCRIPTION, |b| {
            b.put_u16(names.len() as u16);
            for (name, letter) in names.iter().zip(letters.bytes()) {
                let (oid, len) = type_of(letter);
                cstr(b, name);
                b.put_u32(0); // not a table column
                b.put_u16(0);
                b.put_u32(oid);
                b.put_i16(len);
                b.put_i32(-1); // no type modifier
                b.put_u16(0); // text format
            }
        });
        Table {
            buf,
            columns: names.len(),
            rows: 0,
            scratch: String::new(),
        }
    }

    pub fn row(&mut self, cells: &[Cell]) {
        debug_assert_eq!(cells.len(), self.columns, "one cell per column");
        let scratch = &mut self.scratch;
        frame(self.buf, be::DATA_ROW, |b| {
            b.put_u16(cells.len() as u16);
            for cell in cells {
                scratch.clear();
                let text = match cell {
                    Cell::Null => {
                        b.put_i32(-1);
                        continue;
                    }
                    Cell::Text(s) => s,
                    Cell::Int(v) => {
                        let _ = write!(scratch, "{v}");
                        scratch.as_str()
                    }
                    Cell::Uint(v) => {
                        let _ = write!(scratch, "{v}");
                        scratch.as_str()
                    }
                    Cell::Time(t) => {
                        time_text(scratch, *t);
                        scratch.as_str()
                    }
                };
                b.put_i32(text.len() as i32);
                b.put_slice(text.as_bytes());
            }
        });
        self.rows += 1;
    }

    /// CommandComplete `SHOW` (PgBouncer's tag for every result set).
    pub fn finish(self) {
        command_complete(self.buf, "SHOW");
    }
}

fn time_text(out: &mut String, t: SystemTime) {
    // Whole seconds, UTC, in PgBouncer's `%Y-%m-%d %H:%M:%S %Z` layout.
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| Duration::from_secs(d.as_secs()))
        .unwrap_or_default();
    let rfc = humantime::format_rfc3339_seconds(UNIX_EPOCH + secs).to_string();
    out.push_str(&rfc.replace('T', " ").replace('Z', " UTC"));
}

pub fn command_complete(buf: &mut BytesMut, tag: &str) {
    frame(buf, be::COMMAND_COMPLETE, |b| cstr(b, tag));
}

pub fn empty_query(buf: &mut BytesMut) {
    frame(buf, be::EMPTY_QUERY_RESPONSE, |_| {});
}

/// A NOTICE with an optional DETAIL (SHOW HELP puts the command list there, as PgBouncer does).
pub fn notice(buf: &mut BytesMut, message: &str, detail: Option<&str>) {
    frame(buf, be::NOTICE_RESPONSE, |b| {
        for (field, value) in [(b'S', "NOTICE"), (b'V', "NOTICE"), (b'C', "00000")] {
            b.put_u8(field);
            cstr(b, value);
        }
        b.put_u8(b'M');
        cstr(b, message);
        if let Some(detail) = detail {
            b.put_u8(b'D');
            cstr(b, detail);
        }
        b.put_u8(0);
    });
}

pub fn ready(buf: &mut BytesMut) {
    encode::ready_for_query(buf, TxStatus::Idle);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_look_like_pgbouncers() {
        let mut s = String::new();
        time_text(
            &mut s,
            UNIX_EPOCH + Duration::from_millis(1_795_000_000_123),
        );
        assert_eq!(s, "2026-11-18 11:06:40 UTC");
    }

    #[test]
    fn a_row_of_each_kind() {
        let mut buf = BytesMut::new();
        let mut t = Table::new(&mut buf, "siN", &["a", "b", "c"]);
        t.row(&[Cell::Text("x"), Cell::Int(-3), Cell::Null]);
        t.finish();
        // RowDescription: 3 fields; DataRow: "x", "-3", NULL; CommandComplete SHOW.
        assert_eq!(buf[0], b'T');
        let row_at = 1 + u32::from_be_bytes(buf[1..5].try_into().unwrap()) as usize;
        assert_eq!(buf[row_at], b'D');
        let row = &buf[row_at + 5..];
        assert_eq!(&row[..2], &[0, 3]);
        assert_eq!(&row[2..7], &[0, 0, 0, 1, b'x']);
        assert_eq!(&row[7..13], &[0, 0, 0, 2, b'-', b'3']);
        assert_eq!(&row[13..17], &(-1i32).to_be_bytes());
        assert_eq!(row[17], b'C');
    }
}
