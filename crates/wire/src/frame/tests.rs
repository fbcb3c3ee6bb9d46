use super::*;

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn decodes_frames_one_at_a_time_and_waits_for_more() {
    let d = Decoder::new(1024);
    let mut wire = frame(b'Q', b"select 1\0");
    wire.extend(frame(b'S', b""));
    let mut buf = BytesMut::new();
    // Feed one byte at a time: every prefix must give Ok(None) until a frame is whole.
    let mut got = Vec::new();
    for b in wire {
        buf.extend_from_slice(&[b]);
        while let Some(f) = d.decode(&mut buf).unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].tag(), b'Q');
    assert_eq!(got[0].body(), b"select 1\0");
    assert_eq!(got[1].tag(), b'S');
    assert!(got[1].body().is_empty());
    assert!(buf.is_empty());
}

#[test]
fn rejects_lengths_outside_bounds_before_allocating() {
    let d = Decoder::new(100);
    let mut short = BytesMut::from(&[b'Q', 0, 0, 0, 3][..]);
    assert_eq!(
        d.decode(&mut short),
        Err(ProtocolError::LengthTooShort { len: 3 })
    );
    let mut long = BytesMut::from(&[b'Q', 0xff, 0xff, 0xff, 0xff][..]);
    assert_eq!(
        d.decode(&mut long),
        Err(ProtocolError::LengthTooLong {
            len: u32::MAX,
            max: 100
        })
    );
    assert!(long.capacity() < 1024, "must not reserve for a bad length");
}

#[test]
fn startup_packet_bounds() {
    let d = Decoder::new(1 << 20);
    let mut tiny = BytesMut::from(&[0, 0, 0, 4][..]);
    assert!(matches!(
        d.decode_startup(&mut tiny),
        Err(ProtocolError::LengthTooShort { len: 4 })
    ));
    let mut huge = BytesMut::from(&[0, 1, 0, 0][..]);
    assert!(matches!(
        d.decode_startup(&mut huge),
        Err(ProtocolError::LengthTooLong { .. })
    ));
    let mut ssl = BytesMut::from(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f][..]);
    let body = d.decode_startup(&mut ssl).unwrap().unwrap();
    assert_eq!(&body[..], &[0x04, 0xd2, 0x16, 0x2f]);
}

#[test]
fn frame_from_wire_checks_its_length() {
    assert!(Frame::from_wire(Bytes::from(frame(b'Z', b"I"))).is_ok());
    assert!(Frame::from_wire(Bytes::from_static(b"Z\0\0\0\x09I")).is_err());
    assert!(Frame::from_wire(Bytes::from_static(b"Z")).is_err());
}
