use super::*;

pub(crate) fn entry(path: &[u8], kind: EntryKind) -> TarEntry<'_> {
    TarEntry {
        path,
        kind,
        size: 0,
        mode: if kind == EntryKind::Dir { 0o755 } else { 0o644 },
        uid: 1000,
        gid: 1000,
        mtime: Time {
            secs: 1_700_000_000,
            nanos: 0,
        },
        link: None,
        hard_link: false,
        user: None,
        group: None,
        dev: None,
    }
}

/// Appends an entry with its body (from memory, as sendfile would send
/// it) and padding.
pub(crate) fn push(archive: &mut Vec<u8>, e: &TarEntry, body: &[u8]) {
    let header = entry_header(e);
    assert_eq!(header.len() % BLOCK, 0);
    archive.extend_from_slice(&header);
    assert_eq!(body_size(e), body.len() as u64);
    archive.extend_from_slice(body);
    archive.resize(archive.len() + padding(body.len() as u64), 0);
}

/// Fields of a header block, for the tests that read one back.
fn field(block: &[u8], at: usize, len: usize) -> &[u8] {
    let f = &block[at..at + len];
    let end = f.iter().position(|b| *b == 0).unwrap_or(len);
    &f[..end]
}

#[test]
fn padding_rounds_to_a_block() {
    assert_eq!(padding(0), 0);
    assert_eq!(padding(1), 511);
    assert_eq!(padding(512), 0);
    assert_eq!(padding(513), 511);
    assert_eq!(padding(8 << 30), 0);
    assert_eq!(END.len(), 1024);
    assert!(END.iter().all(|b| *b == 0));
}

#[test]
fn a_plain_file_is_one_ustar_block() {
    let mut e = entry(b"dir/file.txt", EntryKind::File);
    e.size = 5;
    e.user = Some(b"alice");
    e.group = Some(b"staff");
    let h = entry_header(&e);
    assert_eq!(h.len(), 512);
    assert_eq!(field(&h, 0, 100), b"dir/file.txt");
    assert_eq!(field(&h, 100, 8), b"0000644");
    assert_eq!(field(&h, 108, 8), b"0001750");
    assert_eq!(field(&h, 124, 12), b"00000000005");
    assert_eq!(
        field(&h, 136, 12),
        format!("{:011o}", 1_700_000_000).as_bytes()
    );
    assert_eq!(h[156], b'0');
    assert_eq!(&h[257..265], b"ustar\x0000");
    assert_eq!(field(&h, 265, 32), b"alice");
    assert_eq!(field(&h, 297, 32), b"staff");
    // The checksum is the sum with its own field as spaces.
    let mut copy = h.clone();
    copy[148..156].copy_from_slice(b"        ");
    let sum: u32 = copy.iter().map(|b| u32::from(*b)).sum();
    assert_eq!(field(&h, 148, 8), format!("{sum:06o}").as_bytes());
}

#[test]
fn a_directory_gets_its_slash_and_a_socket_nothing() {
    let h = entry_header(&entry(b"a/b", EntryKind::Dir));
    assert_eq!(field(&h, 0, 100), b"a/b/");
    assert_eq!(h[156], b'5');
    assert!(entry_header(&entry(b"sock", EntryKind::Socket)).is_empty());
}

#[test]
fn a_long_path_is_split_into_prefix_and_name_when_it_can_be() {
    let path = format!("{}/{}", "p".repeat(120), "n".repeat(90));
    let h = entry_header(&entry(path.as_bytes(), EntryKind::File));
    assert_eq!(h.len(), 512, "no pax header needed");
    assert_eq!(field(&h, 0, 100), "n".repeat(90).as_bytes());
    assert_eq!(field(&h, 345, 155), "p".repeat(120).as_bytes());
}

#[test]
fn what_ustar_cannot_hold_goes_to_pax_records() {
    let mut e = entry(b"x", EntryKind::File);
    e.size = 8 << 30;
    e.uid = 3_000_000;
    e.mtime = Time {
        secs: 1_700_000_000,
        nanos: 120_000_000,
    };
    let h = entry_header(&e);
    assert_eq!(h.len(), 3 * 512);
    assert_eq!(h[156], b'x');
    let records = String::from_utf8(field(&h, 512, 512).to_vec()).unwrap();
    assert_eq!(
        records,
        "15 uid=3000000\n19 size=8589934592\n30 mtime=1700000000.120000000\n"
    );
    assert_eq!(field(&h, 1024 + 124, 12), b"00000000000");
    // Negative times, signed once.
    assert_eq!(
        pax_time(Time {
            secs: -2,
            nanos: 500_000_000
        }),
        "-1.500000000"
    );
    assert_eq!(pax_time(Time { secs: -1, nanos: 1 }), "-0.999999999");
}

#[test]
fn a_record_length_counts_its_own_digits() {
    for n in [0, 1, 5, 6, 7, 85, 86, 87, 88, 995, 996, 997] {
        let mut p = Pax::default();
        p.push(b"k", "v".repeat(n).as_bytes());
        let text = String::from_utf8(p.body.clone()).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), p.body.len(), "value of {n}");
    }
}
